"""The per-image predictions beside each eval record (parquet): top-5 classes and probabilities, the
target and, for ReaL, the label set, so ReaL, intervals and paired tests are recomputed without
rerunning."""
from __future__ import annotations

import io
from pathlib import Path
from typing import Sequence

from vitbench.eval.scoring import EvalResult
from vitbench.records.io import atomic_write_bytes


def predictions_table(result: EvalResult, files: Sequence | None = None, label_sets=None):
    """Per-sample predictions as a pyarrow Table (columns: index, file, target, top5_idx, top5_prob
    [, real_labels])."""
    import pyarrow as pa

    p = result.predictions
    cols = {"index": pa.array(p.index, pa.int64())}
    cols["file"] = pa.array([str(files[int(i)]) if files is not None else None for i in p.index], pa.string())
    cols["target"] = pa.array(p.target, pa.int64())
    cols["top5_idx"] = pa.array([list(map(int, r)) for r in p.top5_idx], pa.list_(pa.int32()))
    cols["top5_prob"] = pa.array([list(map(float, r)) for r in p.top5_prob], pa.list_(pa.float32()))
    if label_sets is not None:
        cols["real_labels"] = pa.array([list(map(int, label_sets[int(i)])) for i in p.index],
                                       pa.list_(pa.int32()))
    return pa.table(cols)


def write_predictions(path: Path, result: EvalResult, files: Sequence | None = None,
                      label_sets=None) -> Path:
    """Write the per-sample predictions as parquet, atomically (temp file + os.replace)."""
    import pyarrow.parquet as pq

    buf = io.BytesIO()
    pq.write_table(predictions_table(result, files, label_sets), buf, compression="zstd")
    atomic_write_bytes(Path(path), buf.getvalue())
    return Path(path)


def read_predictions(path: Path, columns: Sequence[str] | None = None):
    """The parquet written by `write_predictions` (optionally only `columns`), as a DataFrame."""
    import pandas as pd

    return pd.read_parquet(path, columns=list(columns) if columns else None)
