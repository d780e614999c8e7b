"""Bracketed pastes holding escape sequences arrive whole, in order and clean (issue 15:
``printf 'AAA \\e[31mBBB\\e[0m CCC'`` pasted landed as ``^[31mBBB^[0m CCCAAA``).

The raw input a terminal sends goes through the parser the app's driver builds
(tui/app/paste.py's PasteSafeParser), and through Textual's Linux driver itself, reading the
bytes from a pipe as it reads a terminal, into the prompt editor of a running app.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import sys
import threading

import pytest
from textual import events
from textual._xterm_parser import XTermParser
from textual.drivers import linux_driver
from tui_helpers import settle, until

from tui.app.paste import PasteSafeParser
from tui.app.widgets.prompt_editor import PromptEditor

PASTE = "\x1b[200~AAA \x1b[31mBBB\x1b[0m CCC\x1b[201~"


def read(parser: XTermParser, pieces: list[str]) -> list[tuple[str, str | None]]:
    """What the parser makes of the input read in these pieces, as (event, key or text)."""
    out: list[events.Event] = []
    for piece in pieces:
        out += parser.feed(piece)
    return [
        (type(e).__name__, e.text if isinstance(e, events.Paste) else getattr(e, "key", None))
        for e in out
    ]


def random_pieces(data: str, rng: random.Random) -> list[str]:
    cuts = sorted(rng.sample(range(1, len(data)), k=min(8, len(data) - 1)))
    return [data[a:b] for a, b in zip([0, *cuts], [*cuts, len(data)], strict=True)]


def test_a_paste_with_escape_sequences_is_one_clean_paste_between_the_keys_around_it():
    raw = "x" + PASTE + "y"
    expected = [("Key", "x"), ("Paste", "AAA BBB CCC"), ("Key", "y")]
    assert read(PasteSafeParser(), [raw]) == expected
    assert read(PasteSafeParser(), list(raw)) == expected  # one character per read
    rng = random.Random(15)
    for _ in range(30):  # brackets and sequences cut anywhere between reads
        assert read(PasteSafeParser(), random_pieces(raw, rng)) == expected


@pytest.mark.parametrize(
    ("pasted", "text"),
    [
        ("line 1\r\nline 2\rline 3\n", "line 1\nline 2\nline 3\n"),  # terminals paste CR
        ("tab\there", "tab\there"),
        ("osc \x1b]52;c;SGVsbG8=\x07clipboard", "osc clipboard"),
        ("title \x1b]0;owned\x1b\\ end", "title  end"),
        ("c1 \x9b31mred", "c1 red"),
        ("lone \x1b", "lone "),  # an ESC right before the closing bracket
        ("focus \x1b[I and \x1b[O", "focus  and "),
        ("bell\x07 nul\x00 del\x7f", "bell nul del"),
        ("", ""),
        ("\x1b[31m" + "long " * 20 + "\x1b[0m", "long " * 20),
    ],
)
def test_pasted_control_sequences_are_removed_and_the_text_kept(pasted, text):
    raw = "\x1b[200~" + pasted + "\x1b[201~"
    assert read(PasteSafeParser(), [raw]) == [("Paste", text)]
    assert read(PasteSafeParser(), list(raw)) == [("Paste", text)]


def test_keys_mouse_and_focus_outside_a_paste_are_read_as_textual_reads_them():
    raw = (
        "ab\x1b[A\x1b[B\x1b[1;5C"  # letters, arrows, ctrl+right
        "\x1b[<0;10;5M\x1b[<0;10;5m"  # a click (SGR mouse)
        "\x1b[I\x1b[O"  # focus in, focus out
        "\x1b[2~\x1b[20~\x1bOP"  # insert, f9, f1: sequences that start like a paste bracket
        "\r\t\x7f\x1bx"  # enter, tab, backspace, alt+x
        + PASTE
        + "\x1b[15~z"
    )
    mine = read(PasteSafeParser(), [raw])
    theirs = read(XTermParser(), [raw.replace(PASTE, "")])
    assert mine == theirs[:-2] + [("Paste", "AAA BBB CCC")] + theirs[-2:]
    assert ("Key", "f9") in mine and ("Key", "insert") in mine


async def test_escape_alone_is_still_the_escape_key_after_its_delay():
    parser = PasteSafeParser()
    assert read(parser, ["\x1b"]) == []  # it may start a sequence: Textual waits
    await asyncio.sleep(0.3)  # past Textual's escape delay (not asserted on)
    assert [type(e).__name__ + ":" + e.key for e in parser.tick()] == ["Key:escape"]


def test_the_app_makes_the_terminal_drivers_build_the_paste_safe_parser(make_app):
    app = make_app()
    assert linux_driver.XTermParser is PasteSafeParser
    assert app.driver_class.__module__ == linux_driver.__name__


async def test_a_paste_read_from_the_terminal_by_textuals_driver_lands_whole_in_the_editor(
    make_app, monkeypatch
):
    r, w = os.pipe()
    stdin = os.fdopen(r, "rb", buffering=0)
    monkeypatch.setattr(sys, "__stdin__", stdin)  # the driver reads "the terminal" from here
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        editor = app.screen.query_one(PromptEditor)
        editor.focus()
        saved = {s: signal.getsignal(s) for s in (signal.SIGTSTP, signal.SIGCONT)}
        driver = app.driver_class(app)  # Textual's LinuxDriver, as `routedeck` runs it
        for s, handler in saved.items():
            signal.signal(s, handler)
        thread = threading.Thread(target=driver.run_input_thread, daemon=True)
        thread.start()
        try:
            # Typed text, then the paste in three reads (cut inside a sequence and inside the
            # closing bracket), then more typing.
            raw = ("before " + PASTE + " after").encode()
            for a, b in ((0, 20), (20, len(raw) - 10), (len(raw) - 10, len(raw))):
                os.write(w, raw[a:b])
                await asyncio.sleep(0.05)
            await until(pilot, lambda: editor.text.endswith("after"), "the typing after it")
        finally:
            driver.exit_event.set()
            thread.join(5)
            os.close(w)
            stdin.close()
        assert editor.text == "before AAA BBB CCC after"
