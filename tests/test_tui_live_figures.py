"""The figures a pane draws while an answer streams: tokens and cost only rise from one frame to
the next and end at the provider's figures (issue 15: ``~777 … ~$0.0109`` was drawn, then
``693 … $0.009723``). Every model is simulated (no keys; conftest removes them) and runs ten
times faster than life, slow enough for many frames.
"""

from __future__ import annotations

import re

import pytest
from tui_helpers import main_screen, run, settle

from tui.app.widgets.run_pane import PaneMetrics
from tui.router.cost.pricing import format_usd

pytestmark = pytest.mark.usefixtures("close_shared_http_client")

SIZE = (140, 45)
PROMPT = "explain how a hash map handles collisions, with the trade-offs of each approach"
FIGURES = re.compile(r"tok (~?)([\d,]+)→~?([\d,]+).*cost (?:free|~?\$([\d.,]+))", re.S)


@pytest.fixture
def drawn(monkeypatch) -> dict[str, list[str]]:
    """What each pane's figures line showed, every time it was painted, by side."""
    seen: dict[str, list[str]] = {"routed": [], "baseline": []}
    render = PaneMetrics.render

    def recording_render(self: PaneMetrics):
        visual = render(self)
        seen[self.parent.side].append(str(visual))
        return visual

    monkeypatch.setattr(PaneMetrics, "render", recording_render)
    return seen


def parsed(line: str) -> tuple[int, int, float, bool]:
    """(input tokens, output tokens, cost, estimated) of a drawn figures line."""
    m = FIGURES.search(line)
    assert m, line
    estimated, inp, out, cost = m.groups()
    return int(inp.replace(",", "")), int(out.replace(",", "")), float(cost or 0), bool(estimated)


async def test_drawn_tokens_and_cost_never_drop_and_end_at_the_providers_figures(
    make_app, monkeypatch, drawn
):
    monkeypatch.setenv("ROUTEDECK_SIM_SPEED", "10")
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await run(pilot, PROMPT)
        pair = main_screen(app).last_pair
        assert pair is not None
        for side in ("routed", "baseline"):
            result = getattr(pair, side)
            assert result.simulated and not result.usage_estimated
            frames = [parsed(line) for line in drawn[side] if "tok –" not in line]
            live = [f for f in frames if f[3]]
            assert len(live) >= 5, drawn[side]  # many frames while it streamed
            for before, after in zip(frames, frames[1:], strict=False):
                rising = all(a >= b for a, b in zip(after[:3], before[:3], strict=True))
                assert rising, (side, before, after)
            final = drawn[side][-1]
            assert f"tok {result.input_tokens:,}→{result.output_tokens:,}" in final
            assert f"cost {format_usd(result.cost_usd)}" in final
