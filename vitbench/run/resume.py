"""The resume rules: when a record already on disk stands for the work a run would do, in one place.

    eval_rerun_reason(record, limit, fingerprint, weights_sha256)
                                                   None: the 'ok' record stands (same data, same weights,
                                                   same limit)
    stats_current(record)                          counted with today's counting rules
    bench_measured_here(record, device, opts)      measured on this machine (device name and torch), with
                                                   the options asked for (torch.compile, channels-last)

An eval record is found by its path, which names its setting (`records.eval_path`): a compiled or
channels-last job never finds the plain record, nor the other way round.
"""
from __future__ import annotations


def eval_rerun_reason(rec, limit: int | None, fingerprint, weights_sha256: str | None) -> str | None:
    """None when `rec` stands for the job: an 'ok' record made with the same weights (sha256) on the
    same data (same fingerprint) by a full run, or by a --limit run with this job's limit. Otherwise
    why the job runs again. `weights_sha256` None: the weights cannot be told (a model from Python
    without a hash), so no record stands for them."""
    if rec is None or rec.status != "ok":
        return "no 'ok' record"
    if rec.limit is not None and rec.limit != limit:
        return f"its record is of a --limit {rec.limit} run"
    old = rec.provenance.data_fingerprint if rec.provenance else None
    if old is None:
        return "its record does not say which data it was measured on (made before data fingerprints)"
    why = old.mismatch(fingerprint)
    if why:
        return f"its record was measured on other data ({why})"
    if weights_sha256 is None:
        return "the weights have no hash to match the record with (a model from Python without weights_sha256)"
    made_with = rec.weights.sha256 if rec.weights else None
    if made_with != weights_sha256:
        return f"its record was measured with other weights (sha256 {str(made_with)[:12]} -> {weights_sha256[:12]})"
    return None


def stats_current(rec) -> bool:
    """Whether a stats record exists and was counted with today's rules (`stats.COUNT_RULES`)."""
    from vitbench.stats import COUNT_RULES

    return rec is not None and rec.count_rules == COUNT_RULES


def bench_measured_here(rec, device: str, opts=None) -> bool:
    """Whether a throughput record exists and was measured on this machine (same device name and torch
    version): a record copied from another machine is not this one's speed. With `opts`
    (bench.BenchOptions), also with its torch.compile and channels-last: `run --compile` times the
    compiled model even where an eager timing stands."""
    import torch

    from vitbench.records import device_name

    prov = rec.provenance if rec is not None else None
    if opts is not None and rec is not None and (rec.compile, rec.channels_last) != (opts.compile, opts.channels_last):
        return False
    return prov is not None and (prov.device_name, prov.torch_version) == (device_name(device), torch.__version__)
