"""The record store and schema: records read once per run or report, older schemas upgraded on read,
not-run records of older runs left out, a corrupt file named and skipped."""
from __future__ import annotations

import json
import logging

from vitbench.records import EvalRecord, Reason, RecordStore, eval_path, read_record, write_record
from vitbench.records.schema import SCHEMA_VERSION

CKPT = "deit_tiny_patch16_224.fb_in1k"


def _v1(status: str, reason: str) -> dict:
    return {"checkpoint": CKPT, "dataset": "imagenet", "precision": "fp32", "status": status, "reason": reason,
            "kind": "eval", "schema_version": 1}


def test_a_schema_1_record_is_upgraded_on_read(tmp_path):
    path = tmp_path / "r.json"
    path.write_text(json.dumps(_v1("not_run", "No weights found for 'x'\n\nImageNet-1k val (imagenet) not found: ...")))
    rec = read_record(path)
    assert rec.schema_version == SCHEMA_VERSION == 2
    assert [r.kind for r in rec.reasons] == ["weights", "data"]
    assert rec.reason.startswith("No weights found") and "not found" in rec.reason


def test_a_reason_keeps_its_remedy_apart():
    r = Reason.from_error("data", "ImageNet-A (a) not found: looked in /d. Provide it with --data-root DIR")
    assert (r.kind, r.message, r.remedy) == ("data", "ImageNet-A (a) not found: looked in /d.",
                                             "Provide it with --data-root DIR")
    assert r.text == "ImageNet-A (a) not found: looked in /d.\nProvide it with --data-root DIR"


def test_the_store_reads_each_file_once_and_refreshes_only_what_changed(tmp_path, monkeypatch):
    import vitbench.records.store as store_module

    ok = EvalRecord(CKPT, "imagenet", "fp32", "ok", top1=72.0, complete=True)
    write_record(eval_path(tmp_path, "imagenet", CKPT, "fp32"), ok)
    legacy = eval_path(tmp_path, "v2", CKPT, "fp32")
    legacy.parent.mkdir(parents=True)
    legacy.write_text(json.dumps(_v1("not_run", "No weights found")))
    reads = []
    real = store_module.read_record
    monkeypatch.setattr(store_module, "read_record", lambda p: reads.append(p.name) or real(p))
    store = RecordStore.load(tmp_path)
    assert len(reads) == 2 and [r.dataset for r in store.evals] == ["imagenet"]     # not-run: not a measurement
    assert store.best(CKPT, "imagenet").top1 == 72.0 and store.get(legacy).status == "not_run"
    store.refresh()
    assert len(reads) == 2                                                          # nothing changed: nothing read
    write_record(eval_path(tmp_path, "real", CKPT, "fp32"), EvalRecord(CKPT, "real", "fp32", "ok", top1=80.0))
    store.refresh()
    assert reads[2:] == [f"{CKPT}__fp32.json"] and store.best(CKPT, "real").top1 == 80.0


def test_a_corrupt_record_is_named_and_skipped(tmp_path, caplog):
    path = eval_path(tmp_path, "imagenet", CKPT, "fp32")
    path.parent.mkdir(parents=True)
    path.write_text("{ not json")
    with caplog.at_level(logging.WARNING):
        store = RecordStore.load(tmp_path)
    assert store.evals == [] and str(path) in caplog.text and "rerun" in caplog.text


def test_settings_live_side_by_side_and_the_plain_one_is_preferred(tmp_path):
    """Records of one checkpoint at several settings, each at its own path ('fp32+compile' sorts before
    'fp32' as a file name): the store prefers fp32, and at one precision the plain record."""
    made = {}
    for precision, compile, channels_last, top1 in (("fp32", True, False, 71.0), ("fp32", False, True, 70.5),
                                                    ("bf16", False, False, 69.0), ("fp32", False, False, 72.0)):
        rec = EvalRecord(CKPT, "imagenet", precision, "ok", top1=top1, compile=compile, channels_last=channels_last,
                         ece=0.0123, top1_1000way=None)
        path = eval_path(tmp_path, "imagenet", CKPT, rec.setting)
        write_record(path, rec)
        made[rec.setting] = path
    assert sorted(p.name for p in made.values()) == sorted(
        f"{CKPT}__{s}.json" for s in ("fp32", "fp32+compile", "fp32+channels_last", "bf16"))
    store = RecordStore.load(tmp_path)
    assert [r.setting for r in store.evals_of(CKPT, "imagenet")] == ["fp32", "fp32+channels_last", "fp32+compile",
                                                                     "bf16"]
    assert store.best(CKPT, "imagenet").setting == "fp32" and store.best(CKPT, "imagenet", "bf16").top1 == 69.0
    again = read_record(made["fp32+compile"])
    assert (again.compile, again.channels_last, again.ece, again.top1_1000way) == (True, False, 0.0123, None)
