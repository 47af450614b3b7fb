"""vitbench command line. Parses flags into plain config dataclasses; nothing below sees argparse.

    vitbench list [--json]
    vitbench run [NAME ...|--all] ...      evaluate, count, benchmark, write CSVs and reports
    vitbench stats [NAME ...|--all] [--json]
    vitbench bench [NAME ...|--all] ...
    vitbench report [--results-dir results] [--out reports]
    vitbench compare A B [--dataset imagenet] [--json]   agreement of two records (checkpoint@setting)
    vitbench robustness [--json]                         effective robustness, measured and published
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path

from vitbench.catalog.registry import UnknownModelError, get_checkpoint, list_models
from vitbench.catalog.user import CatalogError, is_source_name
from vitbench.data.specs import DATASETS, selectable_datasets
from vitbench.eval.precision import PRECISIONS

DEFAULT_RESULTS = Path("results")
REPORTS_HELP = ("where cards, comparison.md and plots go (default: reports/ beside the default results/; "
                "with another --results-dir X, X/reports, so one run's reports never overwrite another's)")


class UsageError(Exception):
    """A bad flag value; printed without a traceback, exit status 2."""


def _csv_list(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


def _select(names: list[str], all_models: bool) -> list[str]:
    if all_models and names:
        raise UsageError("give checkpoint names or --all, not both")
    if all_models:
        return list_models()
    if not names:
        raise UsageError("name at least one checkpoint (see `vitbench list`) or pass --all")
    selected: list[str] = []
    for n in names:
        if is_source_name(n):                  # hf-hub:ORG/NAME[@REV], local-dir:PATH: read its config.json
            from vitbench.models import resolve_checkpoint

            resolve_checkpoint(n)
        matches = list_models(n) if any(c in n for c in "*?[") else [get_checkpoint(n).name]
        if not matches:
            raise UsageError(f"pattern {n!r} matches no registered checkpoint (see `vitbench list`)")
        selected += [m for m in matches if m not in selected]
    return selected


def _added_baselines() -> str:
    """'r adds r-clean, a adds a-clean': the baseline-only sets a selection brings along."""
    return ", ".join(f"{n} adds {s.baseline}" for n, s in DATASETS.items()
                     if s.baseline and DATASETS[s.baseline].baseline_only)


def _data_overrides(items: list[str]) -> dict[str, str]:
    out = {}
    for item in items:
        name, sep, target = item.partition("=")
        if not sep or not name or not target:
            raise UsageError(f"--data {item!r}: expected NAME=PATH or NAME=hf:DATASET_ID (optionally @split)")
        out[name.strip()] = target.strip()
    return out


def _shard(text: str) -> tuple[int, int]:
    i, sep, n = text.partition("/")
    try:
        shard = (int(i), int(n))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected I/N, e.g. 0/4") from None
    if not sep or shard[1] < 1 or not 0 <= shard[0] < shard[1]:
        raise argparse.ArgumentTypeError(f"{text!r}: expected I/N with 0 <= I < N, e.g. 0/4")
    return shard


def _add_catalog(p: argparse.ArgumentParser) -> None:
    p.add_argument("--catalog", action="append", default=[], metavar="FILE",
                   help="a YAML catalog of your own checkpoints, beside the zoo (repeatable; also "
                        "VITBENCH_CATALOG, a path list)")


def _add_model_selection(p: argparse.ArgumentParser) -> None:
    p.add_argument("names", nargs="*", metavar="NAME",
                   help="checkpoint names or shell patterns (see `vitbench list`), hf-hub:ORG/NAME[@REV] "
                        "or local-dir:PATH")
    p.add_argument("--all", dest="all_models", action="store_true",
                   help="every registered checkpoint (the zoo and your catalogs)")
    _add_catalog(p)


def _add_device_flags(p: argparse.ArgumentParser, batch_default: int | None) -> None:
    p.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N (default: cpu)")
    p.add_argument("--precision", default="fp32", choices=PRECISIONS)
    p.add_argument("--batch-size", type=int, default=batch_default,
                   help="batch size" + (f" (default: {batch_default})" if batch_default else ""))


def build_parser() -> argparse.ArgumentParser:
    from vitbench import __version__

    parser = argparse.ArgumentParser(prog="vitbench", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"vitbench {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("list", help="list registered checkpoints")
    p.add_argument("pattern", nargs="?", default="*", help="shell pattern (default: *)")
    p.add_argument("--json", action="store_true", help="full configs as JSON")
    _add_catalog(p)

    p = sub.add_parser("run", help="evaluate checkpoints, record results, write CSVs and reports")
    _add_model_selection(p)
    p.add_argument("--datasets", type=_csv_list, default=list(selectable_datasets()),
                   help=f"comma list of {','.join(selectable_datasets())} ({_added_baselines()})")
    p.add_argument("--data-root", type=Path, default=None,
                   help="folder with one subfolder per dataset (default: $VITBENCH_DATA)")
    p.add_argument("--data", action="append", default=[], metavar="NAME=PATH|NAME=hf:ID",
                   help="point one dataset elsewhere (repeatable); PATH@split or hf:ID@split picks a "
                        "split (default: validation)")
    _add_device_flags(p, None)
    p.add_argument("--compile", action="store_true",
                   help="evaluate (and time) each model torch.compile'd; records are named <checkpoint>__<precision>"
                        "+compile, beside the eager ones")
    p.add_argument("--channels-last", action="store_true",
                   help="evaluate (and time) with channels-last weights and inputs (records: ...+channels_last)")
    p.add_argument("--workers", type=int, default=min(8, os.cpu_count() or 1))
    p.add_argument("--limit", type=int, default=None, help="first N images per dataset (smoke runs)")
    p.add_argument("--weights-dir", type=Path, default=None,
                   help="folder of <checkpoint>.safetensors/.pth/.bin or transformers folders")
    p.add_argument("--results-dir", type=Path, default=DEFAULT_RESULTS)
    p.add_argument("--reports-dir", type=Path, default=None, help=REPORTS_HELP)
    p.add_argument("--force", action="store_true",
                   help="rerun jobs that already have a record (without it, an 'ok' record is reused "
                        "only when made on the same data)")
    p.add_argument("--skip-bad-images", action="store_true",
                   help="skip unreadable images (recorded) instead of failing the job")
    p.add_argument("--no-bench", action="store_true", help="skip the throughput benchmark")
    p.add_argument("--time-budget", type=float, default=None, metavar="SECONDS",
                   help="seconds of timed forwards per checkpoint: steps and repeats shrink to fit, a model slower than this is timed once (default: 2 on CPU, fixed steps on CUDA; 0: fixed steps)")
    p.add_argument("--no-report", action="store_true", help="skip cards/tables/plots at the end")
    p.add_argument("--shard", type=_shard, default=None, metavar="I/N",
                   help="run only checkpoints I, I+N, I+2N, ... (0-based) of the selection, so N "
                        "independent runs can share one --results-dir")
    p.add_argument("--pass-memory-gb", type=float, default=None, metavar="GB",
                   help="weights one decode pass may hold on the device (default: half its memory)")

    p = sub.add_parser("stats", help="params, GMACs and activations")
    _add_model_selection(p)
    p.add_argument("--json", action="store_true")
    p.add_argument("--results-dir", type=Path, default=None,
                   help="also write stats records here")

    p = sub.add_parser("bench", help="inference throughput benchmark")
    _add_model_selection(p)
    _add_device_flags(p, None)
    p.add_argument("--compile", action="store_true", help="torch.compile the model")
    p.add_argument("--channels-last", action="store_true")
    p.add_argument("--results-dir", type=Path, default=Path("results"))
    p.add_argument("--force", action="store_true", help="rerun checkpoints that have a record")
    p.add_argument("--time-budget", type=float, default=None, metavar="SECONDS",
                   help="seconds of timed forwards per checkpoint: steps and repeats shrink to fit, a model slower than this is timed once (default: 2 on CPU, fixed steps on CUDA; 0: fixed steps)")

    p = sub.add_parser("data", help="where each dataset is (folder, HF cache, Hub), and fetching it ahead of time")
    data = p.add_subparsers(dest="data_command", required=True)
    for name, text in (("list", "where each dataset is found, its format, image count and class check"),
                       ("fetch", "download datasets from their default Hub repos (only their files; "
                                 "nothing when already present)")):
        q = data.add_parser(name, help=text)
        q.add_argument("names", nargs="*", metavar="NAME", help=f"datasets ({', '.join(DATASETS)}; default: all)")
        q.add_argument("--data-root", type=Path, default=None, help="as for `vitbench run` (default: $VITBENCH_DATA)")
        q.add_argument("--data", action="append", default=[], metavar="NAME=PATH|NAME=hf:ID",
                       help="as for `vitbench run`")
        if name == "fetch":
            q.add_argument("--all", dest="all_datasets", action="store_true", help="every dataset")

    p = sub.add_parser("report", help="model cards, comparison tables and plots from the records")
    p.add_argument("--results-dir", type=Path, default=DEFAULT_RESULTS)
    p.add_argument("--out", type=Path, default=None, help=REPORTS_HELP)
    p.add_argument("--templates", type=Path, default=None, help="override the Jinja templates folder")
    _add_catalog(p)
    _add_analyses(sub)
    return parser


def _add_analyses(sub) -> None:
    """`vitbench compare` and `vitbench robustness`: answers from the records, nothing measured."""
    p = sub.add_parser("compare", help="agreement of two records image by image: flips, McNemar, top-1 difference")
    for side in ("A", "B"):
        p.add_argument(side.lower(), metavar=side,
                       help="CHECKPOINT@SETTING (e.g. deit_tiny_patch16_224.fb_in1k@amp_bf16+compile), or a "
                            "checkpoint: its preferred record")
    p.add_argument("--dataset", default="imagenet", help="the dataset both records are of (default: imagenet)")
    p.add_argument("--json", action="store_true", help="one JSON object")
    p.add_argument("--results-dir", type=Path, default=DEFAULT_RESULTS)
    _add_catalog(p)
    p = sub.add_parser("robustness", help="effective robustness on V2, Sketch, R and A: measured and timm's published")
    p.add_argument("--json", action="store_true", help="a JSON list of the rows")
    p.add_argument("--results-dir", type=Path, default=DEFAULT_RESULTS)
    _add_catalog(p)


def cmd_list(args) -> int:
    names = list_models(args.pattern)
    if args.json:
        from dataclasses import asdict

        print(json.dumps({n: asdict(get_checkpoint(n)) for n in names}, indent=2, default=str))
        return 0
    for n in names:
        c = get_checkpoint(n)
        print(f"{n:<55} {c.img_size:>4}  crop {c.crop_pct:<5} {c.interpolation:<8} {c.license}")
    return 0


def _bench_options(args, batch_size: int | None = None):
    """The throughput options; `vitbench run` times at the device's default batch (its --batch-size is
    the evaluation's), `vitbench bench` at its own --batch-size."""
    from vitbench.bench import BenchOptions

    return BenchOptions(batch_size=batch_size, compile=getattr(args, "compile", False),
                        channels_last=getattr(args, "channels_last", False), time_budget_s=args.time_budget)


def cmd_run(args) -> int:
    data_root = args.data_root or (Path(os.environ["VITBENCH_DATA"]) if os.environ.get("VITBENCH_DATA") else None)
    unknown = [d for d in args.datasets if d not in DATASETS]
    if unknown:
        raise UsageError(f"--datasets: unknown {unknown}; choose from {','.join(selectable_datasets())}")
    from vitbench.run import RunConfig, run

    same = ("device", "precision", "compile", "channels_last", "batch_size", "workers", "limit", "weights_dir",
            "results_dir", "reports_dir", "force", "skip_bad_images", "shard", "pass_memory_gb")   # RunConfig fields
    cfg = RunConfig(checkpoints=tuple(_select(args.names, args.all_models)), datasets=tuple(args.datasets),
                    data_root=data_root, data_overrides=tuple(sorted(_data_overrides(args.data).items())),
                    bench=None if args.no_bench else _bench_options(args), report=not args.no_report,
                    **{k: getattr(args, k) for k in same})
    return run(cfg)


def cmd_stats(args) -> int:
    names = _select(args.names, args.all_models)
    from vitbench.stats import stats_main

    return stats_main(names, as_json=args.json, results_dir=args.results_dir)


def cmd_bench(args) -> int:
    """Throughput through the run's own steps (skip rule, lock, a stats record for the CSV's GMACs)."""
    from vitbench.run import RunConfig, RunConfigError, measure_only

    cfg = RunConfig(checkpoints=tuple(_select(args.names, args.all_models)), datasets=(), device=args.device,
                    precision=args.precision, results_dir=args.results_dir, force=args.force,
                    bench=_bench_options(args, args.batch_size), report=False)
    try:
        r = measure_only(cfg)
    except RunConfigError as e:
        raise UsageError(str(e)) from None
    frame = r.store.benchmark_frame(cfg.precision, cfg.device_type).set_index("checkpoint")
    for name in cfg.checkpoints:
        state = r.benched.get(name, "failed")
        if state == "failed" or name not in frame.index:
            continue
        row = frame.loc[name]
        how = {"skipped": "had a record; skipped (--force reruns)", "shared": "same architecture timed above",
               "measured": "measured"}[state]
        print(f"{name:<55} {row.infer_samples_per_sec:>10.2f} samples/s ({row.samples_per_sec_min:.2f}-"
              f"{row.samples_per_sec_max:.2f})  batch {row.infer_batch_size}  step {row.infer_step_time:.2f} ms  "
              f"bs1 {row.latency_ms_bs1:.2f} ms  [{how}]")
    print(f"benchmark CSVs under {cfg.results_dir}/")
    return r.summary.exit_status


def cmd_data(args) -> int:
    """`vitbench data list` / `vitbench data fetch`: one line per dataset, the download size first."""
    from vitbench.data import inventory, sources

    unknown = [n for n in args.names if n not in DATASETS]
    if unknown:
        raise UsageError(f"unknown dataset(s) {unknown}; choose from {', '.join(DATASETS)}")
    if args.data_command == "fetch" and not (args.names or args.all_datasets):
        raise UsageError("name the datasets to fetch, or pass --all")
    data_root = args.data_root or (Path(os.environ["VITBENCH_DATA"]) if os.environ.get("VITBENCH_DATA") else None)
    kw = {"data_root": data_root, "overrides": _data_overrides(args.data)}
    if args.data_command == "list":
        infos = inventory.describe_sources(args.names or None, **kw)
        for info in infos:
            print(info.line())
        return 0
    plan = inventory.fetch_plan(args.names or None, **kw)
    print(plan.text())
    if not plan.items:
        return 1 if plan.unavailable else 0
    try:
        infos = inventory.fetch(plan, **kw)
    except sources.HubUnavailable as e:
        print(f"vitbench data fetch: error: {e}", file=sys.stderr)
        return 1
    for info in infos:
        print(info.line())
    return 0


def cmd_report(args) -> int:
    from vitbench.report import render_reports
    from vitbench.run import default_reports_dir

    out = args.out if args.out is not None else default_reports_dir(args.results_dir)
    written = render_reports(args.results_dir, out, templates_dir=args.templates)
    print(f"wrote {len(written)} files under {out}/")
    return 0


def cmd_compare(args) -> int:
    from vitbench.records import RecordStore
    from vitbench.report.analyses import CompareError, compare

    try:
        result = compare(RecordStore.load(args.results_dir), args.a, args.b, args.dataset)
    except CompareError as e:
        raise UsageError(str(e)) from None
    print(json.dumps(result.to_dict()) if args.json else result.text())
    return 0


def cmd_robustness(args) -> int:
    from vitbench.records import RecordStore
    from vitbench.report.analyses import robustness_rows, robustness_text

    rows = robustness_rows(RecordStore.load(args.results_dir))
    print(json.dumps([r.to_dict() for r in rows], indent=1) if args.json else robustness_text(rows))
    return 0


COMMANDS = {"list": cmd_list, "run": cmd_run, "stats": cmd_stats, "bench": cmd_bench, "data": cmd_data,
            "report": cmd_report, "compare": cmd_compare, "robustness": cmd_robustness}


def _register_catalogs(args) -> None:
    """The user catalogs of this command: VITBENCH_CATALOG, then each --catalog FILE."""
    from vitbench.catalog.user import catalog_paths

    paths = catalog_paths(getattr(args, "catalog", None))
    if paths:
        from vitbench.models import register_catalog

        for path in paths:
            register_catalog(path)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(levelname)s %(name)s: %(message)s")
    try:
        _register_catalogs(args)
        return COMMANDS[args.command](args)
    except (UsageError, UnknownModelError, CatalogError) as e:
        print(f"vitbench {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted; finished jobs are recorded, rerun to resume", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `vitbench list | head`
        sys.stderr.close()
        return 0


if __name__ == "__main__":
    sys.exit(main())
