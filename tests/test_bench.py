"""Throughput benchmark: OOM batch decay (simulated), option defaults, a real tiny CPU run and
`vitbench bench`'s skip / force / failure handling. Speed is never asserted."""
from pathlib import Path

import pytest
import torch

from vitbench import bench
from vitbench.bench import BATCH_LADDER, BenchOptions, batch_ladder, measure, run_with_batch_decay
from vitbench.cli import main
from vitbench.records import BenchRecord, bench_path, provenance, read_record

TINY = "vit_tiny_patch16_224.augreg_in21k_ft_in1k"


# ---------------------------------------------------------------------------- OOM decay

def test_batch_ladder():
    assert batch_ladder(256) == [256, 192, 128, 96, 64, 48, 32, 24, 16, 8, 4, 2, 1]
    assert batch_ladder(1000) == [1000, *BATCH_LADDER[1:]]      # an off-ladder start, then the ladder
    assert batch_ladder(1) == [1]
    with pytest.raises(ValueError):
        batch_ladder(0)


def _fake_step(limit: int, calls: list):
    def step(bs: int):
        calls.append(bs)
        if bs > limit:
            raise torch.OutOfMemoryError(f"CUDA out of memory at batch {bs} (simulated)")
        return f"ran {bs}"
    return step


def test_oom_decays_to_the_first_size_that_fits():
    calls, emptied = [], []
    bs, ooms, result = run_with_batch_decay(_fake_step(100, calls), 256, on_oom=lambda: emptied.append(1))
    assert (bs, ooms, result) == (96, [256, 192, 128], "ran 96")
    assert calls == [256, 192, 128, 96]
    assert len(emptied) == 3                                 # the cache is emptied after each OOM


def test_no_oom_runs_the_requested_size_once():
    calls = []
    assert run_with_batch_decay(_fake_step(10_000, calls), 1024) == (1024, [], "ran 1024")
    assert calls == [1024]


def test_oom_even_at_batch_one_raises():
    with pytest.raises(torch.OutOfMemoryError, match="batch size 1"):
        run_with_batch_decay(_fake_step(0, []), 8)


def test_other_errors_are_not_retried():
    calls = []

    def step(bs):
        calls.append(bs)
        raise RuntimeError("shape mismatch")

    with pytest.raises(RuntimeError, match="shape mismatch"):
        run_with_batch_decay(step, 64)
    assert calls == [64]


# ---------------------------------------------------------------------------- config

def test_settings_defaults_per_device():
    cpu = BenchOptions().settings("cpu")
    assert cpu.batch_size <= 8 and cpu.warmup_steps <= 2 and cpu.repeats == 3 and cpu.time_budget_s == 2.0
    assert BenchOptions(time_budget_s=0).settings("cpu").time_budget_s is None
    assert BenchOptions(time_budget_s=5).settings("cpu").time_budget_s == 5
    assert BenchOptions().settings("cuda").time_budget_s is None
    cuda = BenchOptions().settings("cuda:1")
    assert (cuda.batch_size, cuda.warmup_steps, cuda.timed_steps, cuda.repeats) == (256, 10, 40, 3)
    mine = BenchOptions(batch_size=4, warmup_steps=0, timed_steps=2, repeats=1).settings("cpu")
    assert (mine.batch_size, mine.warmup_steps, mine.timed_steps, mine.repeats) == (4, 0, 2, 1)


# ---------------------------------------------------------------------------- a real tiny run

def test_benchmark_checkpoint_fields_from_a_real_cpu_run(tmp_path):
    opts = BenchOptions(batch_size=2, warmup_steps=1, timed_steps=2, repeats=2,
                        time_budget_s=0)     # 0: fixed steps, no budget
    rec = measure(TINY, "cpu", "fp32", opts)
    assert isinstance(rec, BenchRecord)
    assert (rec.checkpoint, rec.architecture, rec.device, rec.precision) == (
        TINY, "vit_tiny_patch16_224", "cpu", "fp32")
    assert (rec.img_size, rec.batch_size, rec.oom_batch_sizes) == (224, 2, [])
    assert (rec.warmup_steps, rec.timed_steps, rec.repeats) == (1, 2, 2)
    lo, hi = rec.samples_per_sec_spread
    assert 0 < lo <= rec.samples_per_sec <= hi
    assert rec.step_time_ms > 0 and rec.latency_ms_bs1 > 0
    assert rec.samples_per_sec == pytest.approx(2 * 1e3 / rec.step_time_ms, rel=0.01)
    assert rec.peak_memory_mb is None   # not measured on CPU (see bench.time_model)
    assert rec.provenance.device == "cpu" and rec.provenance.torch_version == torch.__version__
    assert not rec.compile and not rec.channels_last


def test_bf16_input_and_model(tmp_path):
    opts = BenchOptions(batch_size=1, warmup_steps=0, timed_steps=1, repeats=1, time_budget_s=0)
    rec = measure(TINY, "cpu", "bf16", opts)
    assert rec.precision == "bf16" and rec.latency_ms_bs1 == rec.step_time_ms


# ---------------------------------------------------------------------------- vitbench bench

def _fake_record(name: str, precision: str) -> BenchRecord:
    if name.startswith("deit_small"):
        raise RuntimeError("simulated failure")
    return BenchRecord(checkpoint=name, architecture=name.split(".")[0], device="cpu",
                       precision=precision, img_size=224, batch_size=1, samples_per_sec=10.0,
                       samples_per_sec_spread=(9.0, 11.0), step_time_ms=100.0, latency_ms_bs1=100.0,
                       peak_memory_mb=1.0, provenance=provenance("cpu"))   # as bench.measure does


def test_bench_writes_skips_forces_and_reports_failures(tmp_path, monkeypatch, capsys, caplog):
    calls = []
    monkeypatch.setattr(bench, "measure", lambda n, d, p, o, w=1: calls.append(n) or _fake_record(n, p))
    names = (TINY, "deit_small_patch16_224.fb_in1k", "deit_tiny_patch16_224.fb_in1k")
    argv = ["bench", "--results-dir", str(tmp_path)]

    assert main([*argv, *names]) == 1                        # one failed, the others still ran
    err = capsys.readouterr().err + caplog.text
    assert "deit_small_patch16_224.fb_in1k: benchmark failed" in err and "simulated failure" in err
    for n in (TINY, "deit_tiny_patch16_224.fb_in1k"):
        assert read_record(bench_path(tmp_path, n, "fp32", "cpu")).samples_per_sec == 10.0
    assert (Path(tmp_path) / "records" / "stats" / f"{TINY}.json").exists()   # CSV needs the GMACs
    assert (Path(tmp_path) / "benchmark-infer-fp32-cpu.csv").exists()

    calls.clear()
    assert main([*argv, TINY]) == 0
    assert calls == [] and "skipped" in capsys.readouterr().out
    assert main([*argv, TINY, "--force"]) == 0
    assert calls == [TINY]


def test_a_record_from_another_machine_is_rerun(tmp_path):
    """Resume skips a throughput record only when it was measured here (device name + torch)."""
    from dataclasses import replace

    from vitbench.records import bench_path, read_record, write_record
    from vitbench.run.resume import bench_measured_here

    def measured_here(path, device):
        return bench_measured_here(read_record(path), device)

    argv = ["bench", TINY, "--results-dir", str(tmp_path), "--time-budget", "0.5"]
    assert main(argv) == 0
    path = bench_path(tmp_path, TINY, "fp32", "cpu")
    assert measured_here(path, "cpu")
    rec = read_record(path)
    elsewhere = replace(rec, samples_per_sec=-1.0,
                        provenance=replace(rec.provenance, device_name="Some Other CPU"))
    write_record(path, elsewhere)
    assert not measured_here(path, "cpu")
    assert main(argv) == 0                            # reruns instead of keeping the foreign number
    assert read_record(path).samples_per_sec > 0


# ---------------------------------------------------------------------------- time budget

@pytest.mark.parametrize("step_ms, expected", [
    (10.0, (3, 3)),      # 200 steps fit: the configured 3 x 3
    (300.0, (2, 3)),     # 6 steps fit: 2 per repeat, 3 repeats
    (700.0, (1, 2)),     # 2 steps fit: 1 step, 2 repeats
    (1500.0, (1, 1)),    # 1 step fits
    (9000.0, (1, 1)),    # slower than the budget: at least one step
])
def test_fit_to_budget(step_ms, expected):
    from vitbench.bench import BenchSettings, fit_to_budget

    s = BenchSettings(batch_size=1, warmup_steps=1, timed_steps=3, repeats=3, time_budget_s=2.0)
    assert fit_to_budget(step_ms, s) == expected
    assert fit_to_budget(step_ms, BenchSettings(1, 1, 3, 3, None)) == (3, 3)   # no budget: fixed


class _Slow(torch.nn.Module):
    """A model whose forward takes `seconds` (sleeps) and counts its calls."""

    def __init__(self, seconds: float):
        super().__init__()
        self.seconds, self.calls = seconds, 0

    def forward(self, x):
        import time

        self.calls += 1
        time.sleep(self.seconds)
        return x


def test_a_model_slower_than_the_budget_runs_one_forward_and_says_so():
    from vitbench.bench import BenchSettings, time_model

    model = _Slow(0.05)
    s = BenchSettings(batch_size=1, warmup_steps=1, timed_steps=3, repeats=3, time_budget_s=0.01)
    t = time_model(model, 1, 8, torch.device("cpu"), "fp32", False, s)
    assert model.calls == 1                                    # no second forward
    assert (t.warmup_steps, t.timed_steps, t.repeats) == (0, 1, 1)
    assert t.samples_per_sec == pytest.approx(1e3 / t.step_time_ms)


def test_the_budget_and_the_steps_run_are_recorded(tmp_path):
    rec = measure(TINY, "cpu", "fp32", BenchOptions(time_budget_s=3.0))
    assert rec.time_budget_s == 3.0
    # either the first step already took the budget (it is the sample), or a warm-up and 1..3 x 1..3 steps
    single = (rec.warmup_steps, rec.timed_steps, rec.repeats) == (0, 1, 1)
    assert single or (rec.warmup_steps >= 1 and 1 <= rec.timed_steps <= 3 and 1 <= rec.repeats <= 3)


def test_tags_of_one_architecture_share_one_timing_in_a_run(tmp_path):
    """Random weights: throughput is the architecture's, so a run times it once per (architecture,
    input size) and the other tags' records say whose timing they carry."""
    from vitbench.cli import main
    from vitbench.records import bench_path, read_record

    tags = ["vit_small_patch16_224.augreg_in1k", "vit_small_patch16_224.augreg_in21k_ft_in1k"]
    assert main(["run", *tags, "--datasets", "v2", "--time-budget", "0.2", "--no-report",
                 "--results-dir", str(tmp_path)]) == 0
    first, second = (read_record(bench_path(tmp_path, t, "fp32", "cpu")) for t in tags)
    assert first.measured_as is None and second.measured_as == tags[0]
    assert second.checkpoint == tags[1]
    assert (second.samples_per_sec, second.step_time_ms) == (first.samples_per_sec, first.step_time_ms)
