"""A prompt's words, as the featurizer and the splitter read them.

Lower case, digits as 0, accents folded, apostrophes kept inside a word, and a run of Chinese or
Japanese characters as its overlapping character pairs (:func:`split_words`); and the imperative
verbs that both the splitter (does a line ask something?) and the tokens (does the prompt open
with an order?) look for. Pure Python (``re`` and ``unicodedata``).
"""

from __future__ import annotations

import re
import unicodedata

WORD_RE = re.compile(r"[^\W_]+(?:['’][^\W_]+)?")

IMPERATIVE_VERBS = frozenset(
    """write make create generate give list extract summarize summarise explain tell translate fix
    convert find identify classify describe compose draft suggest rewrite rephrase paraphrase
    calculate compute solve prove simplify evaluate show implement build design plan recommend
    help pull parse tag label categorize categorise outline brainstorm come compare define name
    invent imagine pretend act play produce proofread edit correct improve check review debug
    refactor optimize optimise tl fill read rank sort rate group split count highlight flag
    map match spot pick select return output format organize organise structure tidy clean
    shorten lengthen expand continue finish complete grade score assess analyze analyse
    interpret determine estimate predict guess advise teach quiz walk guide remind schedule
    draw sketch tabulate derive factor factorise factorize differentiate integrate simplify
    expand reply respond answer""".split()
)

# Digits all read as "0": numbers become shapes ("2024" -> "0000", "mp3" -> "mp0"), so a model
# learns "a year", "a price" rather than each number.
NUMBER_MARK = "0"


def _fold_char(c: str) -> str:
    """What one (lower-case) character becomes in a prompt's words: ASCII digits 1-9 read as
    0, an apostrophe (’ too) stays an apostrophe, a letter or digit is folded to its base
    letters ("è" -> "e", "ﬁ" -> "fi"; other scripts are kept), and anything else separates
    words (a space)."""
    if "1" <= c <= "9":
        return NUMBER_MARK
    if c in "'’":
        return "'"
    folded = "".join(
        ch for ch in unicodedata.normalize("NFKD", c) if not unicodedata.combining(ch))
    return "".join(ch if ch.isalnum() or ch == "'" else " " for ch in folded)


class _FoldTable(dict):
    """A ``str.translate`` table of :func:`_fold_char`, filled as characters are met: after
    the first few prompts a prompt's words cost one C-speed translate and a split."""

    def __missing__(self, codepoint: int) -> str | int:
        c = chr(codepoint)
        folded = _fold_char(c)
        value: str | int = codepoint if folded == c else folded
        if len(self) < 100_000:
            self[codepoint] = value
        return value


_FOLD = _FoldTable()
_TWO_APOSTROPHES = re.compile("'[^ ']+'")
_NON_ASCII = re.compile("([^\x00-\x7f]+)")
_FOLD_ASCII = str.maketrans({chr(i): _fold_char(chr(i)) for i in range(128)})


# Chinese and Japanese: runs of ideographs and kana, written without spaces between words.
_CJK_CHARS = "\u3040-\u30ff\u31f0-\u31ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
_CJK = re.compile(f"[{_CJK_CHARS}]+")
# In raw text, half-width katakana too (folding turns it into the katakana above).
_CJK_IN_TEXT = re.compile(f"[{_CJK_CHARS}\uff66-\uff9f]")


def split_words(text: str) -> list[str]:
    """Lower-case words, digits as 0, accents folded (:func:`_plain_words`), and a run of
    Chinese or Japanese characters as its overlapping character pairs: "写一首诗" -> "写一",
    "一首", "首诗". Those scripts put no spaces between words, so a whole clause would be one
    "word" that no other prompt shares; character pairs are the usual cheap stand-in for
    word segmentation (most words there are two characters), and what they share
    ("函数" function, "面积" area, "总结" summarise) carries over between prompts."""
    words = _plain_words(text)
    if text.isascii() or not _CJK_IN_TEXT.search(text):
        return words
    # Between the runs the words are split as they were (a run may sit inside a word:
    # "javaの配列" is "java", "の配", "配列"); one pass over the runs, not a search per word.
    joined = " ".join(words)
    out: list[str] = []
    at = 0
    for m in _CJK.finditer(joined):
        out.extend(joined[at : m.start()].split())
        run = m.group()
        out.extend(map(str.__add__, run, run[1:]) if len(run) > 1 else (run,))
        at = m.end()
    out.extend(joined[at:].split())
    return out


def _plain_words(text: str) -> list[str]:
    r"""Lower-case words, digits as 0, accents folded: what ``WORD_RE.findall`` finds in the
    text once lower-cased, with 1-9 as 0, ’ as ' and each character NFKD-decomposed without
    its combining marks (a test holds the two equal on every kind of text).

    Equal because every character of a word (``[^\W_]``: ``str.isalnum``) or an apostrophe
    is kept and every other character becomes a space, so ``split`` finds the runs findall
    would; only a run holding an apostrophe needs the regex (``a'b'c`` is ``a'b`` and ``c``).
    Per character decomposition is NFKD of the whole text less its combining marks, since
    canonical reordering only moves combining marks. ``lower`` stays a whole-text step (a
    Greek final sigma depends on its neighbours)."""
    text = text.lower()
    if text.isascii():
        text = text.translate(_FOLD_ASCII)
    else:
        # Translation through the filling table costs a dict lookup per character; the ASCII
        # stretches between non-ASCII ones go through the ASCII table's fast path instead
        # (a 2,000-character French or Chinese prompt: ~200 -> ~90 us).
        parts = _NON_ASCII.split(text)
        parts[::2] = [part.translate(_FOLD_ASCII) for part in parts[::2]]
        parts[1::2] = [part.translate(_FOLD) for part in parts[1::2]]
        text = "".join(parts)
    # Only letters, digits, apostrophes and spaces are left. A word holds at most one
    # apostrophe, between letters; only a run that breaks that needs the regex.
    if "'" not in text or not (  # (an apostrophe may come from a decomposition: "＇" -> "'")
        "' " in text or " '" in text or text[0] == "'" or text[-1] == "'" or "''" in text
        or _TWO_APOSTROPHES.search(text)
    ):
        return text.split()
    out: list[str] = []
    for part in text.split():
        if "'" in part:
            out.extend(WORD_RE.findall(part))
        else:
            out.append(part)
    return out


