"""What a run did, said once at its end: counts, the jobs not run grouped by reason, the failures."""
from __future__ import annotations

from dataclasses import dataclass, field

from vitbench.records import Reason


@dataclass
class Summary:
    done: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    not_run: list[tuple[str, list[Reason]]] = field(default_factory=list)   # a job may lack weights and data
    failed: list[tuple[str, str]] = field(default_factory=list)            # (what, error)
    extra: list[str] = field(default_factory=list)                         # passes, CSVs, wall time

    def render(self) -> str:
        lines = [f"done: {len(self.done)}   skipped (had a record): {len(self.skipped)}   "
                 f"not run: {len(self.not_run)}   failed: {len(self.failed)}"]
        lines += [f"  {x}" for x in self.extra]
        if self.not_run:
            lines.append("not run (no data or weights on this machine; not a failure, exit status stays 0):")
            groups: dict[tuple[str, str], list[tuple[str, Reason]]] = {}
            for job, reasons in self.not_run:
                for r in reasons:
                    groups.setdefault((r.kind, _group(r)), []).append((job, r))
            for (_, title), items in groups.items():
                lines.append(f"  {title}: {len(items)} job(s), e.g. {items[0][0]}")
                lines += [f"    {ln}" for ln in items[0][1].text.splitlines()]
        if self.failed:
            lines.append("failed:")
            lines += [f"  {what}: {err.splitlines()[0] if err else ''}" for what, err in self.failed]
        return "\n".join(lines)

    @property
    def exit_status(self) -> int:
        return 1 if self.failed else 0


def _group(r: Reason) -> str:
    """The heading a reason is grouped under: no weights, or which dataset was not found."""
    if r.kind == "weights":
        return "no weights found"
    return r.message.split(":", 1)[0] if r.kind == "data" else r.kind
