"""What a run did, said once at its end: counts, the jobs not run grouped by reason, the failures."""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from vitbench.records import Reason


@dataclass
class Summary:
    done: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    # (checkpoint, dataset, reasons): a job may lack weights and data
    not_run: list[tuple[str, str, list[Reason]]] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)            # (what, error)
    extra: list[str] = field(default_factory=list)                         # passes, CSVs, wall time

    def render(self) -> str:
        lines = [f"done: {len(self.done)}   skipped (had a record): {len(self.skipped)}   "
                 f"not run: {len(self.not_run)}   failed: {len(self.failed)}"]
        lines += [f"  {x}" for x in self.extra]
        if self.not_run:
            lines.append("not run (no data or weights on this machine; not a failure, exit status stays 0):")
            groups: dict[str, list[tuple[str, str, Reason]]] = {}
            for checkpoint, dataset, reasons in self.not_run:
                for r in reasons:
                    groups.setdefault(r.kind, []).append((checkpoint, dataset, r))
            for kind, items in groups.items():
                what = {"weights": "no weights found", "data": "dataset not found"}.get(kind, kind)
                lines.append(f"  {what}: {len(items)} job(s){_which(kind, items)}")
                lines += [f"    {ln}" for ln in items[0][2].text.splitlines()]
        if self.failed:
            lines.append("failed:")
            lines += [f"  {what}: {err.splitlines()[0] if err else ''}" for what, err in self.failed]
        return "\n".join(lines)

    @property
    def exit_status(self) -> int:
        return 1 if self.failed else 0


def _which(kind: str, items: list[tuple[str, str, Reason]]) -> str:
    """Which datasets a 'dataset not found' group covers (jobs per dataset), else an example job."""
    if kind != "data":
        return f", e.g. {items[0][0]} {items[0][1]}"
    per = Counter(dataset for _, dataset, _ in items)
    counts = set(per.values())
    each = f" ({counts.pop()} each)" if len(counts) == 1 else ""
    return ": " + ", ".join(per if each else (f"{d} ({n})" for d, n in per.items())) + each + "; the first:"
