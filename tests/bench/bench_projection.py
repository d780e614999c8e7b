"""Speed of the savings tools: projecting 10,000 prompts (target <= 5 s), what-if reprojection,
the threshold sweep, and retraining after a label correction (target <= 1 s).

    .venv/bin/python tests/bench/bench_projection.py [--routes PATH] [--n 10000]

Prints wall and CPU seconds (CPU time shows how much of the wall time was this process's own work
when the machine is busy) and the load average. Uses the classifier cache like the app does;
retrained models go to a temporary folder.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tui.router.classifier import corrections  # noqa: E402
from tui.router.classifier.build import build_classifier  # noqa: E402
from tui.router.classifier.evaluate import read_labelled  # noqa: E402
from tui.router.cost.classified import classify_prompts  # noqa: E402
from tui.router.cost.projection import project, reproject  # noqa: E402
from tui.router.cost.sweep import threshold_sweep  # noqa: E402
from tui.router.cost.workload import WorkloadItem, read_workload  # noqa: E402
from tui.router.table.load import load_table  # noqa: E402
from tui.router.types import Cell  # noqa: E402

DEMO = ROOT / "tui" / "data" / "demo_workload.jsonl"
DEV = ROOT / "tests" / "data" / "dev.jsonl"


class Clock:
    def __enter__(self) -> Clock:
        self.wall, self.cpu = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc: object) -> None:
        self.wall = time.perf_counter() - self.wall
        self.cpu = time.process_time() - self.cpu

    def __str__(self) -> str:
        return f"{self.wall:7.3f} s wall  {self.cpu:7.3f} s cpu"


def workloads(n: int) -> tuple[list[WorkloadItem], list[WorkloadItem]]:
    """(the demo workload repeated to n, n distinct prompts made from it)."""
    if DEMO.exists():
        base = read_workload(DEMO)
    else:  # synthesize when the demo workload is not there
        topics = ["python", "tax law", "the moon", "a haiku", "invoices", "integrals"]
        base = [WorkloadItem(f"tell me something about {t} please") for t in topics]
    repeated = [base[i % len(base)] for i in range(n)]
    distinct = [
        replace(base[i % len(base)], prompt=f"{base[i % len(base)].prompt} (case {i})")
        for i in range(n)
    ]
    return repeated, distinct


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--routes", default=None)
    ap.add_argument("--n", type=int, default=10_000)
    args = ap.parse_args()

    print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}  "
          f"cpus: {os.cpu_count()}")
    table = load_table(args.routes)
    with Clock() as t:
        classifier = build_classifier(table)
    print(f"classifier ready (cache or training)     {t}")
    repeated, distinct = workloads(args.n)

    with Clock() as t:
        p = project(repeated, table, classifier)
    print(f"project {args.n:,} prompts (demo repeated)  {t}")
    with Clock() as t:
        p = project(distinct, table, classifier)
    print(f"project {args.n:,} DISTINCT prompts        {t}   target <= 5 s")
    print(f"    n={p.n} routed=${p.routed_usd:.2f} baseline=${p.baseline_usd:.2f} "
          f"savings={p.savings_pct:.1f}% uncertain={p.n_uncertain} unpriced={p.unpriced} "
          f"accuracy={p.accuracy:.3f}")

    classified = p.classified
    assert classified is not None
    times = []
    for i in range(20):
        model = "openai/gpt-5-mini" if i % 2 else "anthropic/claude-haiku-4-5"
        edited = table.with_cell("code", table.default_priority, Cell(primary=model))
        with Clock() as t:
            reproject(classified, edited)
        times.append(t.wall)
    print(f"reproject after a cell edit (median of 20) {statistics.median(times) * 1000:8.2f} ms")
    with Clock() as t:
        points = threshold_sweep(classified, table)
    print(f"threshold sweep, {len(points)} thresholds           {t}")

    rows = read_labelled(DEV, table.task_names) if DEV.exists() else []
    wrong = [
        (r, c) for r, c in zip(rows, classify_prompts([r.prompt for r in rows],
                                                                  classifier), strict=True)
        if c.label != r.label and c.classifier == "local"
    ]
    if not wrong:
        print("no misclassified dev prompt to correct: retraining not measured")
        return
    # What a session keeps between corrections (the TUI passes session.corrections).
    trainer = corrections.CorrectionTrainer()
    with tempfile.TemporaryDirectory() as tmp:
        with Clock() as t:
            corrections.prepare(table, classifier, directory=Path(tmp), trainer=trainer)
        print(f"prepare corrections (sklearn import, featurize examples) {t}   (once, in background)")
        current, current_clf = table, classifier
        for r, _c in wrong[:3]:
            new = corrections.add_correction(current, r.prompt, r.label)
            with Clock() as t:
                clf, info = corrections.retrain(current, new, old_classifier=current_clf,
                                                directory=Path(tmp), trainer=trainer)
            print(f"retrain after a correction ({info['method']}, {info.get('n_iter')} Newton "
                  f"steps) {t}   target <= 1 s")
            with Clock() as t:
                report = corrections.retrain_and_compare(
                    current, new, rows, prompt=r.prompt, task=r.label,
                    old_classifier=current_clf, directory=Path(tmp), trainer=trainer,
                )
            before, after = report.dev_before, report.dev_after
            assert before is not None and after is not None
            print(f"    + compare on {after.n} dev rows          {t}   fixed={report.fixed} "
                  f"accuracy {before.accuracy:.3f} -> {after.accuracy:.3f}, macro-F1 "
                  f"{before.macro_f1:.3f} -> {after.macro_f1:.3f}")
            current, current_clf = new, clf


if __name__ == "__main__":
    main()
