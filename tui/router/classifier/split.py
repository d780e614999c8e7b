"""Splitting a prompt into its instruction and the material pasted into it.

A prompt's task is set by what it asks, not by what it pastes (see
:mod:`tui.router.classifier.features`), so before it becomes tokens a prompt is split into

* instruction pieces: what the user asks, and
* passages of pasted material: fenced blocks, quoted lines, XML-ish tagged blocks, text after
  "Text:", "Email:" ... labels or after a line ending with a colon, the long middle of a long
  prompt, each with the kind of material it is (code, log, table, data, markup, list, kv,
  prose: :func:`passage_kind`).

:func:`split_prompt` runs the steps in order, each a function below it: delimited material,
paragraphs into units, each unit line by line, then the whole prompt's pieces looked at again
(a closing ask inside material, long unstructured text, a short ask before paragraphs that ask
nothing), and quoted spans inside the instruction.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache

from tui.router.classifier.words import IMPERATIVE_VERBS, WORD_RE, split_words

KIND_SAMPLE_CHARS = 2_000  # material looked at to tell its kind
MAX_UNITS = 6  # paragraphs looked at one by one: the first and last three


# --------------------------------------------------------------------------------------------
# Splitting a prompt into instruction and material
# --------------------------------------------------------------------------------------------


@dataclass
class Passage:
    text: str
    how: str  # fence, tag, quote, label, colon, inline, quoted, structured, para, middle
    kind: str = ""  # code, log, table, data, markup, list, kv, prose (set by split_prompt)
    label: str = ""  # the label that introduced it ("email", "python", ...), lower case


@dataclass
class Split:
    instruction: list[str] = field(default_factory=list)  # instruction pieces, in order
    passages: list[Passage] = field(default_factory=list)


_FENCE = re.compile(r"(```+|~~~+)[ \t]*([^\n`]*)\n?(.*?)(?:\1|\Z)", re.S)
_TRIPLE_QUOTE = re.compile(r"(\"\"\"|''')(.*?)\1", re.S)
_TAG_BLOCK = re.compile(r"<([A-Za-z][\w-]{0,30})(?:\s[^<>\n]{0,80})?>(.*?)</\1\s*>", re.S)

# Labels that introduce pasted material ("Email: ...") and labels that introduce the ask.
MATERIAL_LABELS = frozenset(
    """text texts article articles context email emails e-mail passage review reviews input
    inputs data dataset notes transcript document documents doc paragraph paragraphs story
    essay code snippet log logs output error errors traceback stacktrace message messages content
    abstract report excerpt source sentence sentences comment comments feedback post posts tweet
    tweets letter description bio biography resume cv invoice receipt table csv json xml html yaml
    script lyrics poem statement quote chat conversation dialogue dialog minutes memo announcement
    body reference background contract agreement policy listing product results result
    response answer draft original example examples sample record records entry entries
    items headline headlines title thread issue ticket sql function class file
    config configuration payload stack page""".split()
)
INSTRUCTION_LABELS = frozenset(
    """question questions q task tasks instruction instructions ask prompt goal objective
    format requirements requirement constraints constraint rules you user me""".split()
)
# Words in a short lead-in that point at material ("Extract the dates from this: ...").
_POINTERS = MATERIAL_LABELS | frozenset(
    "this these that following below above here here's heres attached pasted given".split()
)

_LEAD_IN = re.compile(
    r"\b(this|these|following|below|here'?s|here is|here are|attached|pasted)\b", re.I
)
# "the article", "this email", "my notes": the instruction names material it comes with.
_NAMES_MATERIAL = re.compile(
    r"\b(the|this|these|that|those|my|our|his|her|their)\s+(\w+\s+)?(text|texts|article|"
    r"passage|email|emails|e-mail|message|messages|document|paragraph|paragraphs|reviews?|"
    r"notes|transcript|story|essay|snippet|log|logs|report|excerpt|letter|thread|tweets?|"
    r"posts?|listing|posting|resume|cv|bio|description|data|table|list|json|csv|contract|"
    r"policy|minutes|chat|conversation|draft|sentences?|comments?|feedback|survey|results|"
    r"invoice|receipt|page|section|chapter|abstract|paper)\b",
    re.I,
)
# Each noun above holds one of these: ASCII text holding none cannot match, and this test
# costs a fifth of the search (~25 us on 300 characters).
_MATERIAL_NOUN_STEMS = (
    "text article passage mail message document paragraph review notes transcript story essay "
    "snippet log report excerpt letter thread tweet post list resume cv bio description data "
    "table json csv contract policy minutes chat conversation draft sentence comment feedback "
    "survey results invoice receipt page section chapter abstract paper"
).split()


def _names_material(text: str) -> bool:
    """Whether ``text`` names material it comes with ("the article", "this email")."""
    if text.isascii():
        low = text.lower()
        if not any(map(low.__contains__, _MATERIAL_NOUN_STEMS)):
            return False
    return _NAMES_MATERIAL.search(text) is not None


_REQUEST = re.compile(
    r"\b(can|could|would|will) (you|u)\b|\bplease\b|\bpls\b|\bhelp me\b|\bi (need|want)\b|"
    r"\bi'd like\b|\blet me know\b",
    re.I,
)
_LABEL_LINE = re.compile(r"^[ \t]*[*#_]*([A-Za-z][A-Za-z \-]{0,30}?)[*_]*[ \t]*:[ \t]*(.*)$")
_QUOTE_LINE = re.compile(r"^[ \t]*>")
SENTENCE_END = re.compile(r"(?<=[.!?])[\"')\]]*\s+(?=\S)")
_OPEN_QUOTES = "\"“«„'‘"
_QUOTE_CHARS = re.compile(r'["“«„<`~]')
_CLOSE_QUOTES = "\"”»“'’"
# A quoted span: the opening quote after a space or the start, the closing one before a space,
# punctuation or the end, so that two short quotes never pair up across the text between them.
_QUOTED_SPAN = re.compile(
    r"(?:(?<=[\s:(\[])|^)[\"“«]([^\s\"“”«»][^\"“”«»]{22,}?[^\s\"“”«»])[\"”»]"
    r"(?=[\s.,;:!?)\]]|$)"
)
# A letter or an email: a greeting with a name ("Dear Sam,", "Hi team!") opening it, or a
# sign-off with a name closing it ("Best, Tom", "Thanks,\nPriya").
_GREETING = re.compile(r"\s*(?i:dear|hi|hello|hey|greetings)\s+[^\W\d][^\n,!.?]{0,40}[,!]")
_SIGN_OFF = re.compile(
    r"\b(?i:best|regards|thanks|thank you|cheers|sincerely|best wishes|kind regards)[,!]?"
    r"\s*\n?\s*[A-Z][\w.-]{1,20}(\s+[A-Z][\w.-]{1,20})?[.!]?\s*\Z"
)


def _letter(para: str) -> bool:
    """Whether a paragraph reads as a letter or an email (its start and its last 80
    characters are looked at: a search of the whole paragraph cost ~50 us)."""
    return _GREETING.match(para) is not None or _SIGN_OFF.search(para[-80:]) is not None

# Words that mark text as addressed to the model (second person, request verbs), counted by
# _instructiveness; a word with an apostrophe counts by its head ("you're" -> "you").
_INSTRUCTIVE_WORDS = frozenset(
    "you your please pls plz can could would i me my help need want write make give tell "
    "explain create generate list extract summarise summarize translate rewrite fix convert "
    "find identify classify answer describe compose draft suggest turn above below "
    "following".split()
)


def _instructiveness(text: str) -> float:
    """Instruction cues per word (questions, second person, request verbs)."""
    sample = text[:600]
    hits = sample.count("?")
    for w in WORD_RE.findall(sample.lower()):
        if w in _INSTRUCTIVE_WORDS or (
            ("'" in w or "’" in w) and w.replace("’", "'").partition("'")[0] in _INSTRUCTIVE_WORDS
        ):
            hits += 1
    return hits / max(1, sample.count(" ") + 1)


def _first_word(text: str) -> str:
    m = WORD_RE.search(text[:200])
    return m.group(0).lower() if m else ""


# First words that open an ask without an imperative: requests, and role-play set-ups ("Let's
# roleplay.", "You are Bram, a grumpy innkeeper ...").
_ASK_OPENERS = frozenset("please pls plz can could now let's lets let you you're youre".split())


def _asks(text: str) -> bool:
    """Whether a short piece of text reads as a request or a question."""
    if "?" in text[-600:]:
        return True
    first = _first_word(text)
    if first in IMPERATIVE_VERBS or first in _ASK_OPENERS:
        return True
    return _instructiveness(text) >= 0.1


def _has_ask(text: str) -> bool:
    """Whether instruction text already asks for something (a question or a request)."""
    if "?" in text or _REQUEST.search(text):
        return True
    return any(_first_word(s) in IMPERATIVE_VERBS for s in SENTENCE_END.split(text[:1500]))


def _quote_unit(para: str) -> bool:
    s = para.strip()
    return len(s) > 2 and s[0] in _OPEN_QUOTES[:4] and s.rstrip(".,;!?)")[-1:] in _CLOSE_QUOTES


def _structured(para: str) -> str:
    """The kind of a paragraph that is plainly not prose (code, data, log, table), else ""."""
    if para.count("\n") < 1 and len(para) < 60:
        return ""
    kind = passage_kind(para)
    return kind if kind in ("code", "data", "log", "table", "markup") else ""


# A line of nothing but words, spaces and sentence punctuation, 6 to 149 characters long.
_PLAIN_WORDS = re.compile(r"[^\W\d_][\w ,.'’!?-]{5,148}\Z")
# Symbols of code, markup and data: a line of prose holds at most one (the tokens count them).
SYMBOLISH = re.compile(r"[{}\[\]<>;=|\\`#$@~^*]")
_SHORT_ASKS = frozenset("help thoughts explain why what how review fix ideas feedback".split())


def _prose_ask(line: str) -> bool:
    """A line of plain words that asks something (not a line of code or data): a request,
    a question (with or without its question mark), or a one-word ask ("why", "help?")."""
    s = line.strip()
    if " " not in s:
        return s.rstrip("?!.:").lower() in _SHORT_ASKS
    if len(s) < 8 or _code_line(s) or _LOG_LINE.match(s):
        return False
    if _PLAIN_WORDS.match(s):  # "its not working", "this gives the wrong total"
        return True
    return len(SYMBOLISH.findall(s)) <= 1 and _asks(s)


def _split_paragraphs(text: str) -> list[str]:
    return [p for p in re.split(r"\n[ \t]*\n", text) if p.strip()]


def _label_of(line: str) -> tuple[str, str, str] | None:
    """(label, last word of label, rest of line) of a "Label: ..." line."""
    if len(line) >= 4000:
        return None
    m = _LABEL_LINE.match(line)
    if not m:
        return None
    label = m.group(1).strip().lower()
    return label, label.rsplit(" ", 1)[-1], m.group(2)


def _asks_label(line: str) -> bool:
    """A "Question: ..." / "Task: ..." line."""
    lab = _label_of(line) if ":" in line else None
    return lab is not None and lab[1] in INSTRUCTION_LABELS


# A piece of a prompt while it is split: (role "i" instruction / "m" material, text, how, label).
_Piece = tuple[str, str, str, str]


def split_prompt(prompt: str) -> Split:
    """Split a (cleaned) prompt into instruction pieces and pasted passages."""
    out = Split()
    text = prompt
    if len(text) < 900 and "\n" not in text and ":" not in text and not _QUOTE_CHARS.search(text):
        # The common case, a short one-line ask: nothing to split.
        if text.strip():
            out.instruction.append(text)
        return out
    text = _take_delimited(text, out.passages)
    pieces = _unit_pieces(_units(_split_paragraphs(text)))
    _split_closing_asks(pieces)
    _long_text_material(pieces)
    _material_after_short_ask(pieces)
    _assemble(pieces, out)
    _take_quoted_spans(out)
    for p in out.passages:
        p.kind = passage_kind(p.text, p.label, p.how)
    return out


# --------------------------------------------------------------------------------------------
# 1. Delimited material: fences, triple quotes, <tag>...</tag> blocks.
# --------------------------------------------------------------------------------------------


def _take_delimited(text: str, passages: list[Passage]) -> str:
    """Each fenced, triple-quoted or tagged block becomes a passage; ``text`` without them
    (a blank line in the place of each) is returned."""

    def fence(m: re.Match[str]) -> str:
        body = m.group(3)
        if body.strip():
            passages.append(Passage(body, "fence", label=m.group(2).strip().lower()[:20]))
        return "\n\n"

    if "```" in text or "~~~" in text:
        text = _FENCE.sub(fence, text)

    def triple(m: re.Match[str]) -> str:
        if m.group(2).strip():
            passages.append(Passage(m.group(2), "fence"))
        return "\n\n"

    if '"""' in text or "'''" in text:
        text = _TRIPLE_QUOTE.sub(triple, text)

    def tag(m: re.Match[str]) -> str:
        body = m.group(2)
        if len(body) < 30:
            return m.group(0)
        passages.append(Passage(body, "tag", label=m.group(1).lower()))
        return "\n\n"

    if "</" in text:
        text = _TAG_BLOCK.sub(tag, text)
    return text


# --------------------------------------------------------------------------------------------
# 2. Paragraphs; a quotation running over several paragraphs is one unit.
# --------------------------------------------------------------------------------------------


def _units(paragraphs: list[str]) -> list[tuple[str, bool]]:
    """(text, is a quotation) of each unit: a paragraph, or the paragraphs a quotation that
    opens in one and closes in a later one (at most 30 on) runs over."""
    units: list[tuple[str, bool]] = []
    i = 0
    while i < len(paragraphs):
        para = paragraphs[i]
        s = para.lstrip()
        if s[:1] in _OPEN_QUOTES[:4] and not _quote_unit(para):
            for j in range(i + 1, min(i + 30, len(paragraphs))):
                if _quote_unit(s[:1] + paragraphs[j].strip()):
                    units.append(("\n\n".join(paragraphs[i : j + 1]), True))
                    i = j + 1
                    break
            else:
                units.append((para, False))
                i += 1
            continue
        units.append((para, _quote_unit(para)))
        i += 1
    return units


# --------------------------------------------------------------------------------------------
# 3. Each unit, line by line: quotations, structured blocks, "Label:" lines, lead-ins ending
#    with a colon; material once opened continues until an ask.
# --------------------------------------------------------------------------------------------


class _AskedSoFar:
    """Whether the instruction pieces so far ask something, recomputed only when instruction
    pieces were added (pieces are only appended while the units are read)."""

    def __init__(self, pieces: list[_Piece]) -> None:
        self.pieces = pieces
        self.asked = False
        self.asked_at = -1

    def __call__(self) -> bool:
        n_instr = sum(1 for p in self.pieces if p[0] == "i")
        if n_instr != self.asked_at:
            self.asked = any(p[0] == "i" and _has_ask(p[1]) for p in self.pieces)
            self.asked_at = n_instr
        return self.asked


def _unit_pieces(units: list[tuple[str, bool]]) -> list[_Piece]:
    """The pieces of the units, in order, empty ones left out."""
    pieces: list[_Piece] = []
    asked_so_far = _AskedSoFar(pieces)
    pending = False  # a lead-in or a material label opened material
    n = len(units)
    for index, (para, quoted) in enumerate(units):
        is_last = index == n - 1 and n > 1
        if quoted:
            pieces.append(("m", para.strip()[1:-1], "quote", ""))
            continue
        if n > MAX_UNITS and MAX_UNITS // 2 <= index < n - MAX_UNITS // 2:
            # Many paragraphs: the ask is near the start or the end; the middle is material.
            pieces.append(("m", para, "para", ""))
            continue
        lines = para.split("\n")
        if pending:
            asks_label = _asks_label(lines[0])
            pending = not _material_ends(para, is_last, asks_label, asked_so_far())
            if pending:
                pieces.append(("m", para, "colon", ""))
                continue
        if "\n" in para.strip() and _structured(para):
            _structured_pieces(lines, pieces)
            continue
        pending = _line_pieces(lines, is_last, pieces)
    return [p for p in pieces if p[1].strip()]


def _material_ends(para: str, is_last: bool, asks_label: bool, asked: bool) -> bool:
    """Whether a paragraph ends the material a lead-in or a label opened: material continues
    until an ask. Once the instruction has asked something ("Label these tweets:", "what is
    this email about?"), only a short closing ask ends it: a pasted email or tweet asks
    things too."""
    if asks_label:
        return True
    if _letter(para):
        return False  # a letter or an email ("Dear ...,", "Hi team,", "Best, Tom") asks things too
    if asked:
        return is_last and len(para) <= 250 and _asks(para) and not _structured(para)
    return (is_last and len(para) <= 600 and _asks(para)) or (
        len(para) <= 300 and _asks(para) and not _structured(para)
    )


def _structured_pieces(lines: list[str], pieces: list[_Piece]) -> None:
    """Code, data, a log or a table; prose lines that ask, before or after it, do not belong
    to it ("why does this fail" on the line above a traceback)."""
    head = 0
    while head < len(lines) - 1 and _prose_ask(lines[head]):
        head += 1
    tail = len(lines)
    while tail - 1 > head and _prose_ask(lines[tail - 1]):
        tail -= 1
    if head:
        pieces.append(("i", "\n".join(lines[:head]), "", ""))
    pieces.append(("m", "\n".join(lines[head:tail]), "structured", ""))
    if tail < len(lines):
        pieces.append(("i", "\n".join(lines[tail:]), "", ""))


def _flush(instr: list[str], pieces: list[_Piece]) -> None:
    """The instruction lines gathered so far become a piece (an empty one too)."""
    pieces.append(("i", "\n".join(instr), "", ""))
    instr.clear()


def _line_pieces(lines: list[str], is_last: bool, pieces: list[_Piece]) -> bool:
    """The pieces of a paragraph's lines; whether material it opened goes on in the next
    paragraphs (never after the last one)."""
    instr: list[str] = []
    opened = False
    k = 0
    while k < len(lines):
        step = _line_step(lines, k, instr, pieces)
        if step is None:
            instr.append(lines[k])
            k += 1
        else:
            k, opened_here = step
            opened = opened or opened_here
    if instr:
        pieces.append(("i", "\n".join(instr), "", ""))
        # "Turn this resume into JSON." then the resume, in the next paragraphs.
        if not is_last and (
            _LEAD_IN.search(instr[-1][-300:]) or _names_material(instr[-1][-300:])
        ):
            return True
    return opened and not is_last


def _line_step(
    lines: list[str], k: int, instr: list[str], pieces: list[_Piece]
) -> tuple[int, bool] | None:
    """Line ``k`` read as a quotation, a label, a lead-in ending with a colon or an inline
    lead-in: (the next line to read, whether material opened that may go on past the
    paragraph); None when it is a plain line of instruction."""
    line = lines[k]
    if _QUOTE_LINE.match(line):
        return _quote_lines(lines, k, instr, pieces), False
    lab = _label_of(line)
    if lab is not None:
        step = _label_step(lines, k, lab, instr, pieces)
        if step is not None:
            return step
    stripped = line.rstrip()
    if stripped.endswith(":") and len(stripped) < 300:
        # "Summarize the following:" then material on the next lines / paragraphs.
        instr.append(stripped)
        body = "\n".join(lines[k + 1 :])
        _flush(instr, pieces)
        if body.strip():
            pieces.append(("m", body, "colon", ""))
        return len(lines), True
    if _inline_material(line, instr, pieces):
        return k + 1, True
    return None


def _quote_lines(lines: list[str], k: int, instr: list[str], pieces: list[_Piece]) -> int:
    """The "> " lines from line ``k`` on are a quotation; the next line to read."""
    j = k
    block = []
    while j < len(lines) and _QUOTE_LINE.match(lines[j]):
        block.append(lines[j].lstrip(" \t>"))
        j += 1
    _flush(instr, pieces)
    pieces.append(("m", "\n".join(block), "quote", ""))
    return j


def _label_step(
    lines: list[str], k: int, lab: tuple[str, str, str], instr: list[str], pieces: list[_Piece]
) -> tuple[int, bool] | None:
    """A "Label: ..." line (see :func:`_line_step`); None when the label says nothing."""
    label, last_word, rest = lab
    if last_word in INSTRUCTION_LABELS:
        instr.append(rest)
        return k + 1, False
    run = 1
    while k + run < len(lines) and _label_of(lines[k + run]) is not None:
        run += 1
    if run >= 3 and last_word not in MATERIAL_LABELS:
        # Key: value lines are data.
        _flush(instr, pieces)
        pieces.append(("m", "\n".join(lines[k : k + run]), "kv", ""))
        return k + run, False
    if last_word not in MATERIAL_LABELS:
        return None
    # "Email: ...": the rest of the paragraph, and what follows, is material.
    if " " in label:  # "Summarize this text:" is instruction too
        instr.append(label + ":")
    # ... up to a "Question: ..." line, if one follows in the paragraph.
    end = k + 1
    while end < len(lines) and not _asks_label(lines[end]):
        end += 1
    body = "\n".join([rest, *lines[k + 1 : end]])
    _flush(instr, pieces)
    if body.strip():
        pieces.append(("m", body, "label", last_word))
    if end < len(lines):
        return end, False
    return len(lines), True


def _inline_material(line: str, instr: list[str], pieces: list[_Piece]) -> bool:
    """"Extract the dates from this: <long text>" on one line: the text after the colon is
    material. Whether the line was one."""
    head, sep, tail = line.partition(": ")
    if not (sep and len(head) <= 120 and len(tail) >= 60):
        return False
    head_words = split_words(head)
    if not (set(head_words[-5:]) & _POINTERS or (
        # "summarize: <text>", "tl;dr: <text>", "translate to French: <text>"
        0 < len(head_words) <= 4 and head_words[0] in IMPERATIVE_VERBS
    )):
        return False
    instr.append(head + ":")
    _flush(instr, pieces)
    pieces.append(("m", tail, "inline", ""))
    return True


def _split_closing_asks(pieces: list[_Piece]) -> None:
    """An imperative closing a line of material ("Notes: ... Write a poem about her.") is the
    ask."""
    for k, (role, t, how, label) in enumerate(pieces):
        if role == "m" and how in ("inline", "label") and len(t) < 3000:
            sentences = SENTENCE_END.split(t.strip())
            if len(sentences) >= 2 and len(sentences[-1]) < 300:
                if _first_word(sentences[-1]) in IMPERATIVE_VERBS:
                    pieces[k] = (role, " ".join(sentences[:-1]), how, label)
                    pieces.insert(k + 1, ("i", sentences[-1], "", ""))


# --------------------------------------------------------------------------------------------
# 4. Long, unstructured text: middle paragraphs that ask nothing are material; so is a long
#    first paragraph that asks nothing when a short ask closes the prompt. A single long
#    paragraph keeps its first and last sentences as the instruction.
# --------------------------------------------------------------------------------------------


def _long_text_material(pieces: list[_Piece]) -> None:
    instr_idx = [k for k, p in enumerate(pieces) if p[0] == "i"]
    total = sum(len(pieces[k][1]) for k in instr_idx)
    if total > 600 and len(instr_idx) >= 2:
        _quiet_paragraphs(pieces, instr_idx)
    elif (len(instr_idx) == 2 and len(pieces[instr_idx[0]][1]) >= 150
          and len(pieces[instr_idx[1]][1]) < 200 and _asks(pieces[instr_idx[1]][1])
          and not _asks(pieces[instr_idx[0]][1])):
        # A paragraph that asks nothing, then a short question about it (reading
        # comprehension): the paragraph is material.
        k = instr_idx[0]
        pieces[k] = ("m", pieces[k][1], "para", "")
    elif len(instr_idx) == 1 and total > 900:
        k = instr_idx[0]
        sentences = SENTENCE_END.split(pieces[k][1])
        if len(sentences) >= 4 and len(sentences[0]) < 400 and len(sentences[-1]) < 400:
            pieces[k : k + 1] = [
                ("i", sentences[0], "", ""),
                ("m", " ".join(sentences[1:-1]), "middle", ""),
                ("i", sentences[-1], "", ""),
            ]


def _quiet_paragraphs(pieces: list[_Piece], instr_idx: list[int]) -> None:
    """Of several instruction pieces, the long ones that ask nothing become material: a middle
    one with few instruction cues, or the first when a short piece closes the prompt."""
    first, last = instr_idx[0], instr_idx[-1]
    for k in instr_idx:
        t = pieces[k][1]
        if len(t) < 250:
            continue
        if k not in (first, last) and _instructiveness(t) < 0.08:
            pieces[k] = ("m", t, "para", "")
        elif k == first and len(t) > 500 and not _asks(t[:300] + t[-300:]) and len(
            pieces[last][1]
        ) < 500:
            pieces[k] = ("m", t, "para", "")


def _material_after_short_ask(pieces: list[_Piece]) -> None:
    """A short ask, then paragraphs that ask nothing ("tl;dr", "what's the sample size? no
    time to read it all", then the article): those paragraphs are material."""
    instr_idx = [k for k, p in enumerate(pieces) if p[0] == "i"]
    if len(instr_idx) >= 2 and len(pieces[instr_idx[0]][1]) < 300 and _asks(
        pieces[instr_idx[0]][1]
    ):
        for k in instr_idx[1:]:
            t = pieces[k][1]
            if len(t) >= 150 and not _asks(t[:300] + t[-300:]):
                pieces[k] = ("m", t, "para", "")


def _assemble(pieces: list[_Piece], out: Split) -> None:
    """The pieces into ``out``: instruction pieces in order, material as passages."""
    previous = ""
    for role, t, how, label in pieces:
        if role == "i":
            out.instruction.append(t)
        elif previous == "m" and how in ("colon", "para") and out.passages[-1].how != "fence":
            # The next paragraphs of one pasted text are one passage.
            out.passages[-1].text += "\n\n" + t
        else:
            out.passages.append(Passage(t, how, label=label))
        previous = role


# --------------------------------------------------------------------------------------------
# 5. Quoted spans inside the instruction ('Translate "..." to French').
# --------------------------------------------------------------------------------------------


def _take_quoted_spans(out: Split) -> None:
    if not any(q in t for t in out.instruction for q in "\"“«"):
        return

    def quoted_span(m: re.Match[str]) -> str:
        body = m.group(1)
        if len(body.split()) >= 5:
            out.passages.append(Passage(body, "quoted"))
            return " qqq "
        return m.group(0)

    kept = [_QUOTED_SPAN.sub(quoted_span, t) for t in out.instruction]
    out.instruction = [t for t in kept if t.strip()]


# --------------------------------------------------------------------------------------------
# What kind of material a passage is
# --------------------------------------------------------------------------------------------

CODE_TAGS = frozenset(
    """python py js javascript ts typescript java c cpp c++ csharp cs go golang rust rs ruby rb
    php swift kotlin scala sql bash sh shell zsh powershell ps1 console terminal html css scss
    jsx tsx vue r matlab perl lua haskell dart dockerfile makefile cmake yaml yml toml ini json
    xml graphql hcl terraform nginx diff patch asm vba excel regex code""".split()
)
_LOG_LINE = re.compile(
    r"^\s*(\[?\d{4}-\d\d-\d\d|\[?\d\d:\d\d:\d\d|\[?(error|warn|warning|info|debug|trace|fatal|"
    r"critical|severe|exception)\b|at [\w$.<>]+\(|file \"|traceback|caused by|\w+(error|exception):)",
    re.I,
)
# A line that reads as code: it starts like code, or ends with ; { }, or holds an operator or
# a call. The start is one anchored regex; the rest are substring tests (an unanchored
# alternation tried at every position cost ~0.1 ms per pasted passage).
_CODE_LINE_START = re.compile(
    r"\s*(def|class|import|from|return|elif|else|try|except|catch|function|const|let|var|"
    r"public|private|static|void|int|#include|using|package|func|fn|struct|SELECT|INSERT|UPDATE|"
    r"CREATE|DELETE|ALTER|DROP|WITH|\$|>>>|sudo|npm|pip|git|cd|docker|kubectl)\b|"
    r"\s*(if|for|while)\b.*[:{)]\s*$|\s{2,}\S"
)
_CODE_OPERATORS = ("=>", "->", "::", "==", "!=", "+=", "&&", "||")
_CODE_CALL = re.compile(r"\w\([^()\n]{0,80}\)")


def _code_line(line: str) -> bool:
    """Whether one line (no newline in it) reads as code."""
    if _CODE_LINE_START.match(line):
        return True
    end = line.rstrip()[-1:]
    if end and end in ";{}":
        return True
    if any(op in line for op in _CODE_OPERATORS):
        return True
    return "(" in line and _CODE_CALL.search(line) is not None


_LIST_LINE = re.compile(r"^\s*([-*•]|\d{1,3}[.)])\s+")
_KV_LINE = re.compile(r"^\s*[\w \-]{1,30}:\s*\S")


_CODE_SYMBOLS = re.compile(r"[{}();=<>\[\]_$\\|]")


@lru_cache(maxsize=512)
def passage_kind(text: str, label: str = "", how: str = "") -> str:
    """code, log, table, data, markup, list, kv or prose (from the first 2,000 characters)."""
    sample = text[:KIND_SAMPLE_CHARS]
    stripped = sample.strip()
    lines = [ln for ln in sample.split("\n", 60) if ln.strip()][:30]
    n = max(1, len(lines))
    if stripped[:1] in "{[" and stripped[-1:] in "}]" and stripped.count('"') >= 2:
        return "data"
    if stripped.startswith("<") and stripped.endswith(">") and stripped.count("<") >= 3:
        return "markup"
    logs = sum(1 for ln in lines if _LOG_LINE.match(ln))
    if logs >= 2 and logs >= 0.3 * n:
        return "log"
    if label in CODE_TAGS and label != "code" or (how == "fence" and label in CODE_TAGS):
        return "code"
    # Cells split by pipes or tabs; a tab that only indents is code's (Go), not a table's.
    pipes = sum(1 for ln in lines if ln.count("|") >= 2 or "\t" in ln.strip())
    if n >= 2 and pipes >= 0.6 * n:
        return "table"
    if n >= 3:
        commas = [ln.count(",") for ln in lines[:10]]
        if min(commas) >= 2 and max(commas) == min(commas):
            return "table"
    symbols = len(_CODE_SYMBOLS.findall(sample))
    if symbols > 0.06 * max(len(sample), 1):
        return "code"
    if symbols >= 0.02 * len(sample) or how == "fence":  # code has brackets, = and ;
        code_lines = sum(map(_code_line, lines))
        if n >= 2 and code_lines >= (0.3 if how == "fence" else 0.5) * n:
            return "code"
    if n >= 2 and sum(1 for ln in lines if _LIST_LINE.match(ln)) >= 0.6 * n:
        return "list"
    if n >= 3 and sum(1 for ln in lines if _KV_LINE.match(ln)) >= 0.6 * n:
        return "kv"
    return "prose"


