"""The Hugging Face Hub as weights and data see it: where its local cache is, whether this process may
ask it (HF_HUB_OFFLINE), and whether it can be reached at all.

    hf_cache_dir()        -> Path    the hub cache huggingface_hub would use (HF_HUB_CACHE / HF_HOME), read now
    hub_offline()         -> bool    HF_HUB_OFFLINE (or TRANSFORMERS_OFFLINE), read now
    HUB.unreachable()     -> str     '' when the Hub endpoint answers, else why not (probed once)
    HUB.ask(key, question)           a question's answer (or its error), asked once per process

A machine without network must fail in seconds, once, instead of going through huggingface_hub's
retries with backoff for every checkpoint and every dataset: `HUB` (a `HubAccess`) owns what this
process has learnt about the Hub. Tests replace it with a fresh `HubAccess(probe=...)`.
"""
from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Callable

_PROXY_VARS = ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy")


def _is_true(value: str | None) -> bool:
    return (value or "").upper() in {"1", "ON", "YES", "TRUE"}


def hub_offline() -> bool:
    """HF_HUB_OFFLINE (or TRANSFORMERS_OFFLINE), read now rather than when huggingface_hub was imported."""
    from huggingface_hub import constants

    env = os.environ.get("HF_HUB_OFFLINE") or os.environ.get("TRANSFORMERS_OFFLINE")
    return _is_true(env) if env is not None else bool(constants.HF_HUB_OFFLINE)


def hf_cache_dir() -> Path:
    """The HF hub cache huggingface_hub would use, read from the environment now (tests repoint it)."""
    for var in ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE"):
        if os.environ.get(var):
            return Path(os.path.expandvars(os.path.expanduser(os.environ[var])))
    xdg = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    home = os.environ.get("HF_HOME") or os.path.join(xdg, "huggingface")
    return Path(os.path.expandvars(os.path.expanduser(home))) / "hub"


def probe_hub(timeout: float = 5.0) -> str:
    """'' when the Hub endpoint accepts a TCP connection, else why not. Skipped behind a proxy (the
    proxy, not this machine, connects)."""
    from urllib.parse import urlparse

    from huggingface_hub import constants

    if any(os.environ.get(v) for v in _PROXY_VARS):
        return ""
    url = urlparse(os.environ.get("HF_ENDPOINT") or constants.ENDPOINT)
    port = url.port or (443 if url.scheme == "https" else 80)
    try:
        socket.create_connection((url.hostname, port), timeout=timeout).close()
    except OSError as e:
        return f"cannot connect to {url.hostname}:{port}: {e}"
    return ""


class HubAccess:
    """What this process has learnt about the Hub: whether it can be reached (probed once, or set by
    the first request that failed for want of a network), and the answer to each question asked of
    it (a dataset repo's file listing, ...), kept with its error if it failed."""

    def __init__(self, probe: Callable[[], str] = probe_hub):
        self._probe = probe
        self._unreachable: str | None = None        # None: not probed yet; '': reachable; else why not
        self._answers: dict[object, tuple[bool, object]] = {}

    def unreachable(self) -> str:
        """'' when the Hub can be asked, else why not (a connection probe, the first time only)."""
        if self._unreachable is None:
            self._unreachable = self._probe()
        return self._unreachable

    def mark_unreachable(self, reason: str) -> None:
        """A request failed for want of a network: every later one is skipped with this reason."""
        self._unreachable = reason or "unreachable"

    def ask(self, key, question: Callable[[], object]):
        """`question()`'s answer, computed once per key; an exception it raised is raised again."""
        if key not in self._answers:
            try:
                self._answers[key] = (True, question())
            except Exception as e:  # noqa: BLE001 - kept and raised again for every later ask
                self._answers[key] = (False, e)
        ok, value = self._answers[key]
        if not ok:
            raise value
        return value


HUB = HubAccess()          # this process's; read as `hub.HUB` at call time so tests can replace it

__all__ = ["hf_cache_dir", "hub_offline", "probe_hub", "HubAccess", "HUB"]
