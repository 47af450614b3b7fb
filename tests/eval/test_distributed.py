"""Data-parallel runs (torchrun, 2 gloo processes on the CPU) and independent runs sharing one
results folder (--shard i/n under the results lock) give the single-process records."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from support import REPO, subset_data
from vitbench.records import eval_path, read_record

CKPT = "vit_tiny_patch16_224.augreg_in21k_ft_in1k"
SETS = ("imagenet", "real", "r-clean", "r")


def _env() -> dict:
    return {**os.environ, "PYTHONPATH": str(REPO), "TQDM_DISABLE": "1", "OMP_NUM_THREADS": "1",
            "HF_HUB_OFFLINE": "1"}


@pytest.fixture
def setup(tmp_path):
    """7 ImageNet-val images (an odd count: the ranks' shares differ), 3 ImageNet-R images and a
    random-weight vit_tiny saved as safetensors in a weights folder."""
    from safetensors.torch import save_file

    from vitbench.models import create_model

    subset_data(tmp_path / "data", n_val=7, noise=True)
    wdir = tmp_path / "weights"
    wdir.mkdir()
    torch.manual_seed(0)
    save_file({k: v.contiguous() for k, v in create_model(CKPT).state_dict().items()},
              str(wdir / f"{CKPT}.safetensors"))
    return tmp_path


def _argv(tmp: Path, results: str, *extra: str) -> list[str]:
    return ["run", *extra, "--datasets", "imagenet,real,r", "--data-root", str(tmp / "data"),
            "--weights-dir", str(tmp / "weights"), "--results-dir", str(tmp / results), "--reports-dir",
            str(tmp / f"{results}-reports"), "--workers", "0", "--batch-size", "2", "--no-bench", "--no-report"]


@pytest.mark.slow
def test_torchrun_two_gloo_processes_equal_one_process(setup):
    tmp = setup
    from vitbench import cli

    assert cli.main(_argv(tmp, "single", CKPT)) == 0
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "vitbench", *_argv(tmp, "ddp", CKPT)]
    out = subprocess.run(cmd, env=_env(), cwd=tmp, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert out.stdout.count("done: 4") == 1                 # rank 0 alone reports (and writes)
    for d in SETS:
        one = read_record(eval_path(tmp / "single", d, CKPT, "fp32"))
        two = read_record(eval_path(tmp / "ddp", d, CKPT, "fp32"))
        assert one.status == two.status == "ok"
        assert (two.top1, two.top5, two.n_images, two.n_scored, two.top1_ci, two.top1_1000way, two.ece) == \
               (one.top1, one.top5, one.n_images, one.n_scored, one.top1_ci, one.top1_1000way, one.ece), d
        assert (one.top1_1000way is None) == (d != "r") and one.ece is not None     # r: summed over the ranks
        assert (one.provenance.world_size, two.provenance.world_size) == (1, 2)
        p1 = pd.read_parquet(eval_path(tmp / "single", d, CKPT, "fp32").with_suffix(".parquet"))
        p2 = pd.read_parquet(eval_path(tmp / "ddp", d, CKPT, "fp32").with_suffix(".parquet"))
        assert p1["index"].tolist() == p2["index"].tolist() == list(range(one.n_images))
        assert p1["file"].tolist() == p2["file"].tolist()
        assert np.array_equal(np.stack(p1["top5_idx"]), np.stack(p2["top5_idx"])), d
        assert np.allclose(np.stack(p1["top5_prob"]), np.stack(p2["top5_prob"]), rtol=1e-5, atol=1e-7)
    assert (tmp / "ddp" / "results-imagenet.csv").is_file()


# a results write that finds another process inside the lock's critical section records the clash
_CHECKED_RUN = textwrap.dedent("""
    import os, sys, time
    from pathlib import Path
    import vitbench.records.io as records
    from vitbench import cli

    marker = Path(sys.argv[1])
    real = records.atomic_write_bytes

    def checked(path, data):
        try:
            fd = os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            with open(str(marker) + ".clash", "a") as f:
                f.write(f"{os.getpid()} {path}\\n")
            return real(path, data)
        try:
            time.sleep(0.02)          # widen the window a clash would need
            return real(path, data)
        finally:
            os.close(fd)
            os.unlink(marker)

    records.atomic_write_bytes = checked
    sys.exit(cli.main(sys.argv[2:]))
""")


@pytest.mark.slow
def test_shards_share_one_results_folder_under_the_lock(dummy_weights_two, tmp_path):
    """Two `--shard i/2` runs at once into one results folder: every record, CSV and report written,
    never two writes at the same time (the results lock), and the same files as one unsharded run."""
    tmp, names = tmp_path, dummy_weights_two
    marker = tmp / "in-critical-section"
    procs = []
    for i in range(2):
        argv = _argv(tmp, "shared", *names, "--shard", f"{i}/2")
        argv.remove("--no-report")
        procs.append(subprocess.Popen([sys.executable, "-c", _CHECKED_RUN, str(marker), *argv], env=_env(),
                                      cwd=tmp, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    outs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [o[1][-2000:] for o in outs]
    assert not Path(str(marker) + ".clash").exists(), Path(str(marker) + ".clash").read_text()
    for name in names:
        for d in SETS:
            assert read_record(eval_path(tmp / "shared", d, name, "fp32")).status == "ok"
    csv = pd.read_csv(tmp / "shared" / "results-imagenet.csv")
    assert sorted(csv["model"]) == sorted(names)              # the shard that wrote last saw both
    assert (tmp / "shared-reports" / "comparison.md").is_file()


@pytest.fixture
def dummy_weights_two(setup):
    """A second real checkpoint (DeiT-Ti, the same key) with its own random weights."""
    from safetensors.torch import save_file

    from vitbench.models import create_model

    other = "deit_tiny_patch16_224.fb_in1k"
    torch.manual_seed(1)
    save_file({k: v.contiguous() for k, v in create_model(other).state_dict().items()},
              str(setup / "weights" / f"{other}.safetensors"))
    return (CKPT, other)
