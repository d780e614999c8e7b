"""What LLM classification costs per 1,000 prompts, projected with no call made: the packaged
demo workload (or --workload) classified with ``kind = "llm"`` and ``kind = "cascade"`` for
``[classifier] llm_model`` (or --model), priced with the price library.

    .venv/bin/python tests/bench/bench_classifier_cost.py [--model openai/gpt-5-nano]

No key is read, so nothing is called: every prompt the LLM would be asked about is counted, and
its request's input tokens are estimated from the text the classifier would send (system prompt
with the task descriptions, plus the prompt; characters / 4). Output: a one-word label
(classifier_cost.ANSWER_TOKENS), and, for a reasoning model, the figures again with some hidden
reasoning tokens per call (billed as output), since their count is not known before a call.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tui.router.classifier.cost import ANSWER_TOKENS, summarize  # noqa: E402
from tui.router.cost.classified import classify_workload  # noqa: E402
from tui.router.cost.pricing import cost_usd, format_usd  # noqa: E402
from tui.router.cost.workload import read_workload  # noqa: E402
from tui.router.run.session import Session  # noqa: E402
from tui.router.table.load import load_table  # noqa: E402

DEMO = ROOT / "tui" / "data" / "demo_workload.jsonl"
REASONING_TOKENS = (0, 100, 300, 1000)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--routes", default=None)
    parser.add_argument("--workload", default=str(DEMO))
    parser.add_argument("--model", default=None, help="llm_model (default: the table's)")
    args = parser.parse_args()
    base = load_table(args.routes)
    model = args.model or base.classifier.llm_model
    items = read_workload(args.workload)
    print(f"workload {args.workload}: {len(items)} prompts; llm_model {model}; "
          f"threshold {base.classifier.threshold:.2f}; answer {ANSWER_TOKENS} tokens")
    for kind in ("llm", "cascade"):
        table = replace(base, classifier=replace(base.classifier, kind=kind, llm_model=model))
        session = Session(table=table, env={})  # no key: nothing is called
        classified = classify_workload(items, table, session.load_classifier())
        s = summarize(((it.prompt, it.classification) for it in classified), table)
        mean_in = s.input_tokens / max(1, s.to_llm)
        print(f"\nkind = {kind}: {s.to_llm} of {s.prompts} distinct prompts to the LLM "
              f"({100 * s.to_llm / max(1, s.prompts):.1f}%), ~{mean_in:.0f} input tokens each")
        for extra in REASONING_TOKENS:
            total = sum(
                cost_usd(model, it.classification.llm.request_tokens, ANSWER_TOKENS + extra,
                         table=table) or 0.0
                for it in _distinct(classified) if it.classification.llm is not None
            )
            per = 1000.0 * total / max(1, s.prompts)
            label = "no reasoning tokens" if not extra else f"+{extra} reasoning tokens per call"
            print(f"  {label:34} total {format_usd(total):>10}   per 1,000 prompts "
                  f"{format_usd(per):>10}")


def _distinct(classified):
    seen: set[str] = set()
    for it in classified:
        if it.prompt not in seen:
            seen.add(it.prompt)
            yield it


if __name__ == "__main__":
    main()
