"""The LLM judge in the UI: the line under the panes, and the quality figures other screens show.

``JudgeBar`` is one line: what the judge said about the last run (verdict, whether the two
orders agreed, what it cost, its reason, cut to the width), or that it is judging, or how to ask
it (f7 when it does not run on its own), or why it cannot run. :func:`render_quality` is a grid
cell's human and judge win-or-tie rates side by side, each with its count; :func:`render_task_quality`
is the savings screen's quality line per task type. The reason and every name are outside text:
appended as plain Text, never markup.
"""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.widgets import Static

from tui.router.sanitize import clean
from tui.router.units import dollars, percent, share

# What each verdict reads as, and its colour.
VERDICT_WORDS: dict[str | None, tuple[str, str]] = {
    "routed": ("routed answer better", "bold green"),
    "tie": ("as good (tie)", "bold green"),
    "baseline": ("baseline better", "bold red"),
    "unparsed": ("unparsed reply", "bold yellow"),
    None: ("no verdict", "bold red"),
}


def render_judgement(judgement: Any) -> Text:
    """``judge ✓ as good (tie) · $0.0021 · <reason>``: verdict first, the reason last (it is
    what a narrow terminal cuts)."""
    if not judgement.ran:
        return _unavailable(judgement.error or "judge not run")
    out = Text(" judge ", style="dim")
    verdict = judgement.verdict
    if verdict == "tie" and judgement.consistent is False:
        words, style = "tie: the two orders disagreed", "bold yellow"
    else:
        words, style = VERDICT_WORDS.get(verdict, (str(verdict), "bold"))
    mark = {"routed": "✓ ", "tie": "✓ ", "baseline": "✗ "}.get(verdict or "", "")
    out.append(mark + words, style=style)
    out.append(f" · {dollars(judgement.cost_usd)}", style="dim")
    detail = judgement.reason if verdict is not None else judgement.error
    if detail:
        out.append(" · ", style="dim")
        out.append(" ".join(clean(detail).split()), style="red" if verdict is None else "")
    return out


def _unavailable(why: str) -> Text:
    """Why the judge did not run (the engine's sentences start with "judge")."""
    out = Text(" ")
    if not why.startswith("judge"):
        out.append("judge ", style="dim")
    out.append(clean(why), style="yellow")
    return out


class JudgeBar(Static):
    """One line under the panes: the judge's verdict on the last run (see the module)."""

    DEFAULT_CSS = """
    JudgeBar { height: 1; padding: 0 1; background: $boost; text-wrap: nowrap;
               text-overflow: ellipsis; display: none; }
    JudgeBar.-shown { display: block; }
    MainScreen.-tiny JudgeBar { display: none; }
    """

    def _put(self, text: Text) -> None:
        self.text = text
        self.add_class("-shown")
        self.update(text)

    def on_click(self) -> None:
        """The whole line (a narrow terminal cuts the reason), as a notification."""
        text = getattr(self, "text", None)
        if text is not None and text.plain.strip():
            self.notify(text.copy(), title="judge", timeout=10)

    def show_waiting(self, model: str, auto: bool, key: str = "f7") -> None:
        """While a run is in flight."""
        out = Text(" judge ", style="dim")
        out.append(clean(model))
        out.append(" after the run" if auto else f": {key} after the run asks it", style="dim")
        self._put(out)

    def show_idle(self, model: str, key: str = "f7") -> None:
        out = Text(" judge ", style="dim")
        out.append(f"{key} asks ", style="bold")
        out.append(clean(model))
        out.append(" whether the routed answer held up (two calls, cost apart)", style="dim")
        self._put(out)

    def show_unavailable(self, why: str) -> None:
        self._put(_unavailable(why))

    def show_running(self, model: str) -> None:
        out = Text(" judge ", style="dim")
        out.append(clean(model))
        out.append(" is judging both orders…   esc cancels", style="dim")
        self._put(out)

    def show_cancelled(self) -> None:
        self._put(Text(" judge cancelled: f7 asks again", style="dim"))

    def show_judgement(self, judgement: Any) -> None:
        self._put(render_judgement(judgement))


# --------------------------------------------------------------------------------------------
# Quality figures for the grid and the savings screen
# --------------------------------------------------------------------------------------------


def _rate(out: Text, who: str, stats: Any) -> None:
    n = int(getattr(stats, "n", 0) or 0)
    rate = getattr(stats, "win_or_tie_rate", None)
    out.append(f"{who} ", style="dim")
    if not n or rate is None:
        out.append("–", style="dim")
        return
    style = "green" if rate >= 0.8 else ("yellow" if rate >= 0.5 else "red")
    out.append(share(rate), style=f"bold {style}")
    out.append(f" ({n})", style="dim")


def render_quality(human: Any, judge: Any) -> Text | None:
    """A grid cell's ``✓ you 73% (11) · judge 80% (20)``: the share of runs where the routed
    answer was better or as good, by people (f9) and by the LLM judge, each with its count.
    None when neither has any."""
    if not getattr(human, "n", 0) and not getattr(judge, "n", 0):
        return None
    out = Text("✓ ", style="dim")
    _rate(out, "you", human)
    out.append(" · ", style="dim")
    _rate(out, "judge", judge)
    return out


def render_task_quality(by_task: dict[str, Any], judge_cost_usd: float | None = None) -> Text:
    """The savings screen's quality line: overall and per task type, from the run log's
    judgements; the judge's cost, apart from the savings."""
    n = sum(s.n for s in by_task.values())
    good = sum(s.wins + s.ties for s in by_task.values())
    out = Text()
    out.append("quality ", style="bold")
    out.append("(LLM judge on logged runs) ", style="dim")
    if not n:
        out.append("no verdicts yet", style="dim")
        return out
    out.append("as good or better in ", style="dim")
    out.append(share(good / n), style="bold green" if good / n >= 0.8 else "bold yellow")
    out.append(f" of {n}", style="dim")
    for task, s in by_task.items():
        if s.n:
            out.append("  ")
            out.append(clean(task))
            out.append(f" {percent(s.win_or_tie_pct)}", style="bold")
            out.append(f" ({s.n})", style="dim")
    if judge_cost_usd is not None:
        out.append(f"   judge cost {dollars(judge_cost_usd)}, not in the savings",
                   style="dim")
    return out
