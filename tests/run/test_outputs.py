"""Where a run's reports go, and a run stopped by SIGTERM (workers and all) stops quietly."""

from __future__ import annotations

from pathlib import Path

import pytest

from support import CKPT, TEN, TESTS, make_wnid_folders
from vitbench.catalog import imagenet_synsets

SYN = imagenet_synsets()


pytestmark = pytest.mark.usefixtures("hf_caches_in_tmp")


def test_reports_default_beside_the_results(dummy, tmp_path, monkeypatch):
    from vitbench import cli, report
    from vitbench.run import RunConfig, default_reports_dir

    monkeypatch.chdir(tmp_path)
    assert default_reports_dir(Path("results")) == Path("reports")
    assert default_reports_dir(Path("runs/a")) == Path("runs/a/reports")
    assert RunConfig(results_dir=Path("runs/a"), reports_dir=Path("elsewhere")).reports == Path("elsewhere")
    rendered = []

    def render(results, out, **kw):          # a run hands over its record store, `vitbench report` a path
        rendered.append((Path(getattr(results, "results_dir", results)), out))
        return []

    monkeypatch.setattr(report, "render_reports", render)
    make_wnid_folders(tmp_path / "data" / "imagenet", TEN[:2])
    argv = ["run", CKPT, "--datasets", "imagenet", "--results-dir", "runs/a", "--workers", "0",
            "--batch-size", "4", "--no-bench", "--data-root", "data", "--weights-dir", "weights"]
    assert cli.main(argv) == 0
    assert cli.main(["report", "--results-dir", "runs/a"]) == 0
    assert cli.main(["report"]) == 0
    assert rendered == [(Path("runs/a"), Path("runs/a/reports"))] * 2 + [(Path("results"), Path("reports"))]


_SIGTERM_DRIVER = r"""
import sys, time
from pathlib import Path
sys.path.insert(0, sys.argv[1])
import vitbench.models, vitbench.stats
from vitbench import cli, records
from support import ColourModel

started = Path(sys.argv[2])

class Slow(ColourModel):
    def forward(self, x):
        started.write_text("x")
        time.sleep(60)
        return super().forward(x)

vitbench.models.create_model = lambda name, **kw: Slow()
vitbench.stats.measure = lambda name: records.StatsRecord(
    checkpoint=name, architecture="dummy", img_size=32, param_count=1, gmacs=0.0, gmacs_no_attn=0.0, macts=0.0)
sys.exit(cli.main(sys.argv[3:]))
"""


def test_sigterm_with_workers_stops_quietly(dummy, tmp_path):
    import os
    import signal
    import subprocess
    import sys
    import time

    make_wnid_folders(tmp_path / "data" / "imagenet", TEN)
    started = tmp_path / "started"
    argv = ["run", CKPT, "--datasets", "imagenet", "--results-dir", str(tmp_path / "results"), "--workers", "2",
            "--batch-size", "2", "--no-bench", "--no-report", "--data-root", str(tmp_path / "data"),
            "--weights-dir", str(tmp_path / "weights")]
    proc = subprocess.Popen([sys.executable, "-c", _SIGTERM_DRIVER, str(TESTS), str(started), *argv],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    for _ in range(1200):                         # wait (not timed: a generous bound) until it is evaluating
        if started.exists() or proc.poll() is not None:
            break
        time.sleep(0.1)
    assert started.exists(), proc.communicate()[1]
    os.killpg(proc.pid, signal.SIGTERM)           # the whole group, workers too, as a scheduler does
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "interrupted" in err and "Traceback" not in err and "killed by signal" not in err, err

