"""Records, the source of truth: one JSON file per finished job (schema), written atomically (io), with
the provenance of what made it (provenance), read once per run or report into a RecordStore (store)."""
from vitbench.records.io import (
    atomic_write_bytes,
    atomic_write_text,
    bench_path,
    eval_path,
    read_record,
    same_but_when,
    stats_path,
    write_record,
)
from vitbench.records.provenance import device_name, provenance
from vitbench.records.schema import (
    SCHEMA_VERSION,
    BenchRecord,
    EvalRecord,
    Provenance,
    Reason,
    StatsRecord,
    setting_name,
)
from vitbench.records.store import RecordStore

__all__ = [
    "SCHEMA_VERSION", "setting_name", "EvalRecord", "StatsRecord", "BenchRecord", "Provenance", "Reason", "RecordStore",
    "eval_path", "stats_path", "bench_path", "read_record", "write_record", "same_but_when",
    "atomic_write_bytes", "atomic_write_text", "provenance", "device_name",
]
