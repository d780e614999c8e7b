"""Untrusted text: escape sequences and control characters removed, markup never parsed, keys hidden."""

from __future__ import annotations

import random
import time

import pytest
from rich.console import Console
from rich.text import Text

from tui.router.sanitize import StreamCleaner, clean, env_secrets, redact, safe_text

ESC = "\x1b"
BEL = "\x07"
ST = ESC + "\\"

CASES = [
    # (raw, cleaned)
    ("plain text", "plain text"),
    ("tab\tand\nnewline", "tab\tand\nnewline"),
    ("windows\r\nline", "windows\nline"),
    ("over\rwrite", "overwrite"),
    (f"{ESC}[2Jcleared", "cleared"),
    (f"{ESC}[31mred{ESC}[0m", "red"),
    (f"{ESC}[?1049h{ESC}[1;1H", ""),
    (f"{ESC}[38;2;255;0;0mtrue{ESC}[m", "true"),
    (f"a{ESC}]52;c;cm0gLXJmIH4={BEL}b", "ab"),  # OSC 52 (clipboard) ended by BEL
    (f"a{ESC}]52;c;cm0gLXJmIH4={ST}b", "ab"),  # ... and by ST
    (f"{ESC}]0;evil title{BEL}x", "x"),
    (f"{ESC}]8;;https://evil.example{ST}link{ESC}]8;;{ST}", "link"),  # hyperlink
    (f"{ESC}Pq#0;2;0;0;0{ST}after", "after"),  # DCS (sixel)
    (f"{ESC}_apc payload{ST}ok", "ok"),
    (f"{ESC}X sos {ST}ok", "ok"),
    (f"{ESC}^ pm {ST}ok", "ok"),
    (f"{ESC}7saved{ESC}8", "saved"),
    (f"{ESC}(Bcharset", "charset"),
    (f"{ESC}creset", "reset"),
    (f"lone {ESC}", "lone "),
    (f"{ESC}{ESC}[1mx", "x"),
    ("\x9b2Jc1 csi", "c1 csi"),  # 8-bit CSI
    ("\x9d52;c;abc\x9cafter", "after"),  # 8-bit OSC and ST
    ("\x90dcs\x9cafter", "after"),
    ("bell\x07 nul\x00 bs\x08 del\x7f c1\x85\x8d\x9c", "bell nul bs del c1"),
    (f"{ESC}]unterminated osc swallows the rest", ""),
    (f"{ESC}]52;c;abc{ESC}[31mred", "red"),  # an ESC aborts the string
    (f"{ESC}[31\nno final byte", "\nno final byte"),
    ("unicode: é ü 中文 — ok 🙂", "unicode: é ü 中文 — ok 🙂"),
    ("[/b] and [@click=app.quit]x[/]", "[/b] and [@click=app.quit]x[/]"),
]


@pytest.mark.parametrize(("raw", "expected"), CASES)
def test_clean(raw, expected):
    assert clean(raw) == expected


def test_clean_returns_the_same_object_when_nothing_to_do():
    s = "nothing to remove here\n\tindented"
    assert clean(s) is s


@pytest.mark.parametrize(("raw", "expected"), CASES)
def test_stream_cleaner_every_two_way_split(raw, expected):
    for i in range(len(raw) + 1):
        sc = StreamCleaner()
        got = sc.feed(raw[:i]) + sc.feed(raw[i:]) + sc.flush()
        assert got == expected, (i, raw[:i], raw[i:])


def test_stream_cleaner_character_by_character():
    for raw, expected in CASES:
        sc = StreamCleaner()
        assert "".join(sc.feed(ch) for ch in raw) + sc.flush() == expected


def test_stream_cleaner_matches_clean_on_random_splits():
    rng = random.Random(1234)
    alphabet = [
        "a",
        "b",
        " ",
        "\n",
        "\t",
        "\r",
        ESC,
        "[",
        "]",
        "P",
        "\\",
        "_",
        "^",
        "X",
        BEL,
        "1",
        ";",
        "m",
        "(",
        "B",
        " ",
        "!",
        "\x9b",
        "\x9c",
        "\x9d",
        "\x90",
        "\x85",
        "?",
    ]
    for _ in range(3000):
        raw = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 30)))
        cuts = sorted(rng.sample(range(len(raw) + 1), k=min(len(raw) + 1, rng.randint(0, 5))))
        sc = StreamCleaner()
        out, last = [], 0
        for c in [*cuts, len(raw)]:
            out.append(sc.feed(raw[last:c]))
            last = c
        out.append(sc.flush())
        assert "".join(out) == clean(raw), repr(raw)


def test_stream_cleaner_never_holds_back_plain_text_or_an_osc_body():
    sc = StreamCleaner()
    assert sc.feed("hello ") == "hello "
    assert sc.feed(f"{ESC}]52;c;") == ""
    # A long clipboard payload arrives in pieces: nothing is shown and nothing is buffered.
    for _ in range(1000):
        assert sc.feed("QUJDREVGR0g=" * 10) == ""
    assert len(sc._pending) <= 2
    assert sc.feed(f"{BEL}world") == "world"


def test_split_osc52_across_chunks_with_st_terminator():
    sc = StreamCleaner()
    parts = ["before ", ESC, "]5", "2;c;Zm9v", ESC, "\\", " after"]
    assert "".join(sc.feed(p) for p in parts) + sc.flush() == "before  after"


def test_large_text_is_fast_enough_for_every_chunk():
    big = ("Lorem ipsum dolor sit amet, consectetur adipiscing elit.\n" * 3600)[:200_000]
    dirty = big[:100_000] + f"{ESC}[31m{ESC}]52;c;abc{BEL}\r" + big[100_000:]
    assert clean(big) == big
    assert clean(dirty) == big
    sc = StreamCleaner()
    chunks = [dirty[i : i + 7] for i in range(0, len(dirty), 7)]
    assert "".join(sc.feed(c) for c in chunks) + sc.flush() == big
    # Not a timing assertion: just a generous bound that catches quadratic behaviour.
    t = time.perf_counter()
    for _ in range(10):
        clean(dirty)
    assert time.perf_counter() - t < 30


@pytest.mark.parametrize("raw", ["[/b]", "[@click=app.quit]x[/]", "[bold red]x", "[/"])
def test_safe_text_is_never_markup(raw):
    t = safe_text(raw)
    assert isinstance(t, Text)
    assert t.plain == raw
    assert not t.spans
    console = Console(width=80, record=True, color_system=None)
    console.print(t)
    assert raw in console.export_text()


def test_safe_text_cleans():
    assert safe_text(f"{ESC}[2Jx{ESC}]52;c;abc{BEL}", style="bold").plain == "x"


def test_redact_given_secrets_and_key_shapes():
    secret = "my-own-secret-value-123"
    text = (
        f"key {secret}; openai sk-proj-AbCdEf1234567890xyz; anthropic sk-ant-api03-AAAAbbbbCCCC; "
        "Authorization: Bearer eyJhbGciOi.JIUzI1NiJ9.abc; x-api-key: zzzzzzzzzzzz; gsk_ABCDEFGHIJKLMNOPQRST"
    )
    out = redact(text, [secret, "", "ab"])
    assert secret not in out
    assert "sk-proj" not in out and "sk-ant" not in out
    assert "eyJhbGciOi" not in out
    assert "zzzzzzzz" not in out
    assert "gsk_" not in out
    assert "Bearer ***" in out
    assert out.count("***") == 6
    # Ordinary words survive.
    assert redact("ask-me about desk-lamps", []) == "ask-me about desk-lamps"


def test_env_secrets():
    env = {"A_KEY": "value-a", "EMPTY": ""}
    assert env_secrets(env, ["A_KEY", "EMPTY", None, "MISSING"]) == ("value-a",)


def test_env_secrets_by_name_shape():
    env = {"MY_SERVICE_TOKEN": "tok-123456789", "OPENAI_API_KEY": "sk-abcdefgh123",
           "HOME": "/root", "SHORT_KEY": "abc", "KEYBOARD": "us-international", "CUSTOM": "xyz12"}
    got = env_secrets(env, ["CUSTOM"])
    assert set(got) == {"tok-123456789", "sk-abcdefgh123", "xyz12"}
