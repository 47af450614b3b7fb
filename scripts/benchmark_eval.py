"""Benchmark (not a test): end-to-end eval throughput against model-only throughput, in one process,
for a group of checkpoints sharing a preprocessing key; and the decodes per image.

    python scripts/benchmark_eval.py                                  # DeiT-Ti/S/B, CPU, 64 generated images
    python scripts/benchmark_eval.py --device cuda --precision amp_bf16 --batch-size 256 --workers 16 \\
        --images 10000 vit_base_patch16_224.augreg2_in21k_ft_in1k
    python scripts/benchmark_eval.py --data-root /data --limit 10000 --device cuda ...   # real ImageNet-val

End-to-end runs `vitbench run` (the engine: decode each image once, feed every model) over
imagenet + real + r-clean + a-clean, and takes the pass's wall time from the records (model building
and weight loading excluded). Model-only times each model on uint8 batches already on the device
(normalize + forward, the same batch size and precision), so the ratio is what the data path costs.
Without --data-root it writes a folder of ImageNet-val-named JPEGs (500x375, random content) and
random weights; accuracy is meaningless, throughput is not.
"""
from __future__ import annotations

import argparse
import multiprocessing as mp
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

DEFAULT = ("deit_tiny_patch16_224.fb_in1k", "deit_small_patch16_224.fb_in1k", "deit_base_patch16_224.fb_in1k")


def make_images(root: Path, n: int) -> Path:
    """n ImageNet-val-named JPEGs in wnid folders (class i % 1000), 500x375 like a typical val image."""
    from PIL import Image

    from vitbench.catalog import imagenet_synsets

    syn = imagenet_synsets()
    rng = np.random.default_rng(0)
    base = rng.integers(0, 256, (375 // 8, 500 // 8, 3), dtype=np.uint8)
    for w in syn:
        (root / w).mkdir(parents=True, exist_ok=True)
    for i in range(n):
        # smooth content (a blurred block pattern) so the JPEG decode cost is typical, not noise-sized
        img = Image.fromarray(np.roll(base, i, axis=1)).resize((500, 375), Image.Resampling.BILINEAR)
        img.save(root / syn[i % 1000] / f"ILSVRC2012_val_{i + 1:08d}.JPEG", quality=90)
    return root


def random_weights(names, wdir: Path) -> None:
    from safetensors.torch import save_file

    from vitbench.models import create_model

    for name in names:
        model = create_model(name)
        save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(wdir / f"{name}.safetensors"))


def count_decodes():
    """Count image opens across DataLoader worker processes (fork shares the counter)."""
    from vitbench.data import layouts

    counter = mp.get_context("fork").Value("l", 0)
    real_call = layouts.FileLoader.__call__

    def counting(self, i):
        with counter.get_lock():
            counter.value += 1
        return real_call(self, i)

    layouts.FileLoader.__call__ = counting
    return counter


def model_only(names, weights: Path, device: str, precision: str, batch: int, steps: int) -> dict[str, float]:
    """images/s of normalize + forward on device-resident uint8 batches, per model."""
    from vitbench.data.transforms import normalize_batch
    from vitbench.eval.precision import autocast, input_dtype
    from vitbench.eval.scoring import prepare_model
    from vitbench.models import create_model

    def step(model, x8):
        dc = model.data_config
        with torch.inference_mode(), autocast(device, precision):
            return model(normalize_batch(x8, dc.mean, dc.std, input_dtype(precision)))

    out = {}
    for name in names:
        model = prepare_model(create_model(name, weights=weights / f"{name}.safetensors"), device, precision)
        x8 = torch.randint(0, 256, (batch, *model.data_config.input_size), dtype=torch.uint8, device=device)
        step(model, x8)                                          # warm-up
        _sync(device)
        t0 = time.perf_counter()
        for _ in range(steps):
            step(model, x8)
        _sync(device)
        out[name] = batch * steps / (time.perf_counter() - t0)
        del model
    return out


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("names", nargs="*", default=list(DEFAULT), help="checkpoints sharing one preprocessing key")
    p.add_argument("--device", default="cpu")
    p.add_argument("--precision", default="fp32")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--images", type=int, default=64, help="generated images (without --data-root)")
    p.add_argument("--data-root", type=Path, default=None, help="real data (imagenet/ under it)")
    p.add_argument("--limit", type=int, default=None, help="with --data-root: first N images")
    p.add_argument("--weights-dir", type=Path, default=None, help="real weights (default: random)")
    p.add_argument("--steps", type=int, default=3, help="timed model-only batches per model")
    args = p.parse_args(argv)

    from vitbench.data.config import resolve_data_config
    from vitbench.eval import crop_key
    from vitbench.records import eval_path, read_record
    from vitbench.run import RunConfig, run

    keys = {crop_key(resolve_data_config(n)) for n in args.names}
    if len(keys) != 1:
        print(f"the checkpoints do not share one preprocessing key: {sorted(keys)}", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        data_root = args.data_root or (make_images(tmp / "data" / "imagenet", args.images).parent)
        weights = args.weights_dir
        if weights is None:
            weights = tmp / "weights"
            weights.mkdir()
            random_weights(args.names, weights)
        decodes = count_decodes()
        cfg = RunConfig(checkpoints=tuple(args.names), datasets=("imagenet", "real", "r", "a"),
                        data_root=data_root, data_overrides=(), device=args.device, precision=args.precision,
                        batch_size=args.batch_size, workers=args.workers, limit=args.limit,
                        weights_dir=weights, results_dir=tmp / "results", reports_dir=tmp / "reports",
                        force=True, skip_bad_images=False, bench=None, report=False)
        if run(cfg) != 0:
            print("the eval run failed", file=sys.stderr)
            return 1
        rec = read_record(eval_path(tmp / "results", "imagenet", args.names[0], args.precision))
        n, wall = rec.n_images, rec.wall_time_s
        only = model_only(args.names, weights, args.device, args.precision, args.batch_size, args.steps)
    m = len(args.names)
    e2e = n * m / wall                               # images through a model per second, all models
    ideal = n * m / sum(n / r for r in only.values())  # the same work with the data path for free
    print(f"\n{m} checkpoint(s) at key {sorted(keys)[0]} on {args.device}, {args.precision}, "
          f"batch {args.batch_size}, {args.workers} worker(s), {n} ImageNet-val images "
          f"(imagenet + real + r-clean + a-clean from one forward)")
    for name, r in only.items():
        print(f"  model-only {name:<40} {r:9.1f} img/s")
    print(f"  model-only, the group          {ideal:9.1f} img/s (images x models / summed model time)")
    print(f"  end-to-end, the group          {e2e:9.1f} img/s (pass wall {wall:.2f} s)")
    print(f"  end-to-end / model-only        {100 * e2e / ideal:8.1f} %")
    print(f"  decodes per image              {decodes.value / n:9.2f}  ({decodes.value} opens for {n} images, "
          f"{m} models, 4 datasets)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
