"""How the live token estimates compare with real token counts: chars/4 (what panes showed while
an answer streamed, and what projections still use) and the floor of tui/router/run/token_floor.py
(what they show now). Prints, per kind of text, each estimate divided by the real count
(lowest-highest over the samples): a floor must stay under 1.00. Asserts nothing.

    .venv/bin/python tests/bench/bench_token_estimate.py

Real counts: the simulator's own tokenizer always; OpenAI's cl100k and o200k when the package
``bpe-openai`` is installed (``pip install bpe-openai``: its vocabularies ship inside the wheel, so
it works offline; it is not a dependency of RouteDeck). Samples, all from this repository: prose
(README.md, the table's descriptions), code (tui/), JSON (the table and the demo workload as JSON,
an API-like reply), Chinese and Japanese (the table's examples, the probe sets, and answers written
for this benchmark below), and the simulator's answers to a few prompts.
"""

from __future__ import annotations

import json
import random
import re
import sys
import tomllib
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tui.router.providers.simulated import sim_tokenize, simulated_answer  # noqa: E402
from tui.router.run.metrics import estimate_tokens  # noqa: E402
from tui.router.run.token_floor import token_floor  # noqa: E402

_HAN_KANA = re.compile("[\u3040-\u30ff\u4e00-\u9fff]")
_KANA = re.compile("[\u3040-\u30ff]")

# Answers as a model would give them, written for this benchmark (prose, and prose around code).
CJK_ANSWERS = [
    "要反转一个单链表，最常见的方法是迭代：用三个指针分别指向前一个节点、当前节点和下一个节点。"
    "每一步先保存下一个节点，再把当前节点的指针指向前一个节点，然后整体向前移动一步。当当前节点为空"
    "时，前一个节点就是新的头节点。这个方法的时间复杂度是 O(n)，空间复杂度是 O(1)，适合在面试中使用。"
    "如果你更喜欢递归，也可以先反转后面的部分，再把当前节点接到末尾，不过递归在链表很长的时候可能会"
    "导致栈溢出，所以在生产环境里一般推荐迭代的写法。",
    "秘鲁的首都是利马。利马位于秘鲁中部的太平洋沿岸，是全国的政治、经济和文化中心，人口接近一千万。"
    "西班牙殖民者弗朗西斯科·皮萨罗在一五三五年建立了这座城市，当时称为“国王之城”。由于靠近港口卡亚俄，"
    "利马在殖民时期成为南美洲最重要的城市之一。今天，利马的历史城区已被联合国教科文组织列为世界遗产。",
    "日本の首都は東京です。東京は本州の関東地方にあり、政治や経済、文化の中心地として知られています。"
    "江戸時代には江戸と呼ばれ、徳川幕府が置かれていました。明治維新の後、天皇が京都から移り、名前も"
    "東京に変わりました。現在の東京都には二十三の特別区があり、約千四百万人が住んでいます。",
    "連結リストを反転するには、前のノード、現在のノード、次のノードの三つのポインタを使います。"
    "計算量は O(n) で、追加のメモリはほとんど必要ありません。\n\n```python\ndef reverse(head):\n"
    "    prev = None\n    while head:\n        head.next, prev, head = prev, head, head.next\n"
    "    return prev\n```\n\n再帰でも書けますが、リストが長いとスタックが溢れることがあります。",
    "下面是一个简单的实现：\n\n```python\nimport csv\nfrom collections import defaultdict\n\n"
    "def totals(path):\n    result = defaultdict(float)\n    with open(path, encoding=\"utf-8\") as f:\n"
    "        for row in csv.DictReader(f):\n            result[row[\"customer\"]] += "
    "float(row[\"amount\"])\n    return sorted(result.items(), key=lambda kv: kv[1], reverse=True)\n"
    "```\n\n这个函数会读取订单文件，把每个客户的金额加起来，然后按总额从高到低排序。",
]
SIM_PROMPTS = [
    "write a python function that reverses a linked list",
    "what is the capital of peru and why",
    "list ideas for a birthday party",
    "solve 3x + 7 = 22",
    "extract the dates from this email",
    "write a short poem about routers",
]


def _chunks(text: str, size: int = 1500) -> list[str]:
    out, cur = [], ""
    for para in text.split("\n\n"):
        cur += para + "\n\n"
        if len(cur) >= size:
            out.append(cur.strip())
            cur = ""
    if len(cur) > 200:
        out.append(cur.strip())
    return out


def samples() -> dict[str, list[str]]:
    table = tomllib.loads((ROOT / "routes.toml").read_text(encoding="utf-8"))
    readme = re.sub(r"```.*?```", "", (ROOT / "README.md").read_text(encoding="utf-8"), flags=re.S)
    descriptions = [v["description"] for v in table["tasks"].values()]
    code = [c for f in sorted((ROOT / "tui" / "router").glob("*.py"))[:12]
            for c in _chunks(f.read_text(encoding="utf-8"))[:3]]
    lines = (ROOT / "tui" / "data" / "demo_workload.jsonl").read_text(encoding="utf-8").splitlines()
    rng = random.Random(7)
    reply = {"id": "chatcmpl-9x8", "object": "list", "data": [
        {"id": i, "price": round(rng.uniform(0, 100), 2), "ok": bool(i % 2), "tags": ["a", "bb"],
         "ts": 1700000000 + i} for i in range(40)]}
    as_json = [json.dumps(table["routes"], indent=2)[:3000], json.dumps(reply),
               json.dumps(reply, indent=2)[:3000]]
    as_json += ["\n".join(lines[i : i + 10]) for i in range(0, 60, 10)]
    examples = [e for v in table["tasks"].values() for e in v["examples"] if _HAN_KANA.search(e)]
    cjk = []
    for group in ([e for e in examples if not _KANA.search(e)], [e for e in examples if _KANA.search(e)]):
        cjk += ["\n".join(group[i : i + 12]) for i in range(0, len(group), 12)]
    for f in sorted((ROOT / "tests" / "data" / "probes").glob("*.jsonl")):
        for line in f.read_text(encoding="utf-8").splitlines():
            prompt = json.loads(line).get("prompt", "")
            if _HAN_KANA.search(prompt) and len(prompt) > 60:
                cjk.append(prompt)
    cjk += CJK_ANSWERS
    sim = [simulated_answer(m, p, "mid") for p in SIM_PROMPTS
           for m in ("openai/gpt-4o-mini", "anthropic/claude-sonnet-4-5")]
    return {"prose": _chunks(readme) + descriptions, "code": code, "json": as_json, "cjk": cjk,
            "sim answers": sim}


def counters() -> dict[str, Callable[[str], int]]:
    out: dict[str, Callable[[str], int]] = {"sim": lambda t: len(sim_tokenize(t))}
    try:
        import bpe_openai
    except ImportError:
        print("(bpe-openai not installed: real counts from the simulator only)")
        return out
    for name in ("cl100k_base", "o200k_base"):
        enc = bpe_openai.get_encoding(name)
        out[name.split("_")[0]] = lambda t, enc=enc: len(enc.encode(t))
    return out


def main() -> None:
    real = counters()
    estimators = {"chars/4": lambda t: estimate_tokens(len(t)), "floor": token_floor}
    head = "  ".join(f"{e} ÷ {r:<6}" for e in estimators for r in real)
    print(f"{'text':12} {'n':>3} {'chars':>7}  {head}")
    worst_floor = 0.0
    for kind, texts in samples().items():
        counts = {r: [fn(t) for t in texts] for r, fn in real.items()}
        cells = []
        for ename, est in estimators.items():
            guesses = [est(t) for t in texts]
            for r in real:
                ratios = [g / c for g, c in zip(guesses, counts[r], strict=True)]
                cells.append(f"{min(ratios):.2f}-{max(ratios):.2f}".ljust(len(ename) + 9))
                if ename == "floor":
                    worst_floor = max(worst_floor, *ratios)
        chars = sum(map(len, texts))
        print(f"{kind:12} {len(texts):>3} {chars:>7}  " + "  ".join(cells))
        per = "  ".join(f"{r} {chars / sum(counts[r]):.2f}" for r in real)
        print(f"{'':12} characters per token: {per}")
    print(f"highest floor ÷ real count on any sample: {worst_floor:.2f} (a floor stays under 1.00)")


if __name__ == "__main__":
    main()
