"""The local classifier's featurizer: a prompt becomes a bag of prefixed tokens.

Pure Python (``re`` only), shared by training (as scikit-learn's analyzer) and by inference, so
the two can never disagree. The design follows one observation: a prompt's task is set by its
INSTRUCTION, not by the material pasted into it. A prompt that pastes an article and asks for a
poem is creative, not extraction. So the prompt is first split into

* instruction text: what the user asks, featurized richly (words, word pairs, first words,
  character n-grams for typos and word forms), and
* pasted material: fenced blocks, quoted lines, XML-ish tagged blocks, text after "Text:",
  "Email:" ... labels or after a line ending with a colon, the long middle of a long prompt.
  Material gets its own prefixed word tokens (weighted down by the model) and shape tokens
  saying what kind of material it is (code, log, table, data, list, prose),

plus shape tokens for the whole prompt (length, question or imperative first, digit and operator
density, code-like identifiers). Every feature is a token, so inference is one sparse dot product.

Token prefixes name the feature group (see :func:`group_of`); the model normalises each group
separately so that a long pasted passage cannot drown the instruction.

Work is bounded: at most ``HEAD_CHARS`` + ``TAIL_CHARS`` characters of a prompt are looked at,
whatever its size, so a 1 MB prompt costs about what a 12 kB one does.
"""

from __future__ import annotations

import re
import unicodedata
from bisect import bisect_right
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cached_property, lru_cache

# Bump when tokens, or how a model is trained from them, change: the on-disk model cache is
# keyed by it.
FEATURE_VERSION = 33

HEAD_CHARS = 5_000  # of a huge prompt, the head and the tail are featurized ...
TAIL_CHARS = 2_000  # ... (instructions sit at the start or the end)
INSTRUCTION_MAX_CHARS = 1_000  # instruction text featurized at most (1,500 scored the same)
CHAR_NGRAM_MAX_CHARS = 300  # instruction text that gets character n-grams (600 scored the same)
CHAR_N = 4  # character n-gram size
PASSAGE_MAX_CHARS = 1_000  # material text featurized at most, over all passages (idem)
KIND_SAMPLE_CHARS = 2_000  # material looked at to tell its kind
PROBE_CHARS = 400  # instruction text looked at for digits, operators, identifiers (idem)
MAX_UNITS = 6  # paragraphs looked at one by one: the first and last three

# Feature groups, each normalised on its own by the model.
GROUP_WORDS = 0  # instruction words, word pairs, first words
GROUP_CHARS = 1  # instruction character n-grams
GROUP_PASSAGE = 2  # words of pasted material
GROUP_SHAPE = 3  # shape of the prompt, kind of material, labels of material
N_GROUPS = 4

_GROUP_BY_PREFIX = {
    "w": GROUP_WORDS,
    "b": GROUP_WORDS,
    "f": GROUP_WORDS,
    "f2": GROUP_WORDS,
    "lf": GROUP_WORDS,
    "lf2": GROUP_WORDS,
    "c": GROUP_CHARS,
    "p": GROUP_PASSAGE,
    "x": GROUP_WORDS,
}


def group_of(token: str) -> int:
    """The feature group of a token, from its prefix (``"w:poem"`` -> instruction words)."""
    prefix, _, _ = token.partition(":")
    return _GROUP_BY_PREFIX.get(prefix, GROUP_SHAPE)


# --------------------------------------------------------------------------------------------
# Cleaning
# --------------------------------------------------------------------------------------------

# C0 and C1 control characters except tab and newline become spaces; so do NUL bytes of junk.
_CONTROL = {c: " " for c in (*range(0, 9), 11, 12, *range(14, 32), 127, *range(0x80, 0xA0))}
_CONTROL[13] = "\n"


def bounded_view(prompt: str) -> str:
    """The part of a prompt that is looked at: all of it, or its head and tail when huge."""
    if len(prompt) > HEAD_CHARS + TAIL_CHARS:
        return prompt[:HEAD_CHARS] + "\n\n" + prompt[-TAIL_CHARS:]
    return prompt


_CONTROL_RE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def clean(prompt: str) -> str:
    """Bounded, control characters removed, line endings unified."""
    text = bounded_view(prompt)
    if _CONTROL_RE.search(text):
        text = text.replace("\r\n", "\n").translate(_CONTROL)
    return text


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
_SENTENCE_END = re.compile(r"(?<=[.!?])[\"')\]]*\s+(?=\S)")
_OPEN_QUOTES = "\"“«„'‘"
_QUOTE_CHARS = re.compile(r'["“«„<`~]')
_CLOSE_QUOTES = "\"”»“'’"
# A quoted span: the opening quote after a space or the start, the closing one before a space,
# punctuation or the end, so that two short quotes never pair up across the text between them.
_QUOTED_SPAN = re.compile(
    r"(?:(?<=[\s:(\[])|^)[\"“«]([^\s\"“”«»][^\"“”«»]{22,}?[^\s\"“”«»])[\"”»]"
    r"(?=[\s.,;:!?)\]]|$)"
)
_WORD = re.compile(r"[^\W_]+(?:['’][^\W_]+)?")
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
    for w in _WORD.findall(sample.lower()):
        if w in _INSTRUCTIVE_WORDS or (
            ("'" in w or "’" in w) and w.replace("’", "'").partition("'")[0] in _INSTRUCTIVE_WORDS
        ):
            hits += 1
    return hits / max(1, sample.count(" ") + 1)


def _first_word(text: str) -> str:
    m = _WORD.search(text[:200])
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
    return any(_first_word(s) in IMPERATIVE_VERBS for s in _SENTENCE_END.split(text[:1500]))


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
    return len(_SYMBOLISH.findall(s)) <= 1 and _asks(s)


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


def split_prompt(prompt: str) -> Split:
    """Split a (cleaned) prompt into instruction pieces and pasted passages."""
    out = Split()
    text = prompt
    if len(text) < 900 and "\n" not in text and ":" not in text and not _QUOTE_CHARS.search(text):
        # The common case, a short one-line ask: nothing to split.
        if text.strip():
            out.instruction.append(text)
        return out

    # 1. Delimited material: fences, triple quotes, <tag>...</tag> blocks.
    def fence(m: re.Match[str]) -> str:
        body = m.group(3)
        if body.strip():
            out.passages.append(Passage(body, "fence", label=m.group(2).strip().lower()[:20]))
        return "\n\n"

    if "```" in text or "~~~" in text:
        text = _FENCE.sub(fence, text)

    def triple(m: re.Match[str]) -> str:
        if m.group(2).strip():
            out.passages.append(Passage(m.group(2), "fence"))
        return "\n\n"

    if '"""' in text or "'''" in text:
        text = _TRIPLE_QUOTE.sub(triple, text)

    def tag(m: re.Match[str]) -> str:
        body = m.group(2)
        if len(body) < 30:
            return m.group(0)
        out.passages.append(Passage(body, "tag", label=m.group(1).lower()))
        return "\n\n"

    if "</" in text:
        text = _TAG_BLOCK.sub(tag, text)

    # 2. Paragraphs; a quotation running over several paragraphs is one unit.
    paragraphs = _split_paragraphs(text)
    units: list[tuple[str, bool]] = []  # (text, is a quotation)
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

    # 3. Each unit, line by line: quotations, structured blocks, "Label:" lines, lead-ins
    #    ending with a colon; material once opened continues until an ask.
    pieces: list[tuple[str, str, str, str]] = []  # (role "i"/"m", text, how, label)
    pending = False  # a lead-in or a material label opened material
    asked, asked_at = False, -1  # whether the instruction pieces so far ask something
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
            # Material continues until an ask. Once the instruction has asked something
            # ("Label these tweets:", "what is this email about?"), only a short closing ask
            # ends it: a pasted email or tweet asks things too.
            asks_label = _asks_label(lines[0])
            n_instr = sum(1 for p in pieces if p[0] == "i")
            if n_instr != asked_at:  # recomputed only when instruction pieces were added
                asked = any(p[0] == "i" and _has_ask(p[1]) for p in pieces)
                asked_at = n_instr
            if asks_label:
                pending = False
            elif _letter(para):
                pass  # a letter or an email ("Dear ...,", "Hi team,", "Best, Tom") asks things too
            elif asked:
                if is_last and len(para) <= 250 and _asks(para) and not _structured(para):
                    pending = False
            elif (is_last and len(para) <= 600 and _asks(para)) or (
                len(para) <= 300 and _asks(para) and not _structured(para)
            ):
                pending = False
            if pending:
                pieces.append(("m", para, "colon", ""))
                continue
        if "\n" in para.strip() and _structured(para):
            # Code, data, a log or a table; prose lines that ask, before or after it, do not
            # belong to it ("why does this fail" on the line above a traceback).
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
            continue
        instr: list[str] = []
        k = 0
        while k < len(lines):
            line = lines[k]
            if _QUOTE_LINE.match(line):
                j = k
                block = []
                while j < len(lines) and _QUOTE_LINE.match(lines[j]):
                    block.append(lines[j].lstrip(" \t>"))
                    j += 1
                pieces.append(("i", "\n".join(instr), "", ""))
                instr = []
                pieces.append(("m", "\n".join(block), "quote", ""))
                k = j
                continue
            lab = _label_of(line)
            if lab is not None:
                label, last_word, rest = lab
                if last_word in INSTRUCTION_LABELS:
                    instr.append(rest)
                    k += 1
                    continue
                run = 1
                while k + run < len(lines) and _label_of(lines[k + run]) is not None:
                    run += 1
                if run >= 3 and last_word not in MATERIAL_LABELS:
                    # Key: value lines are data.
                    pieces.append(("i", "\n".join(instr), "", ""))
                    instr = []
                    pieces.append(("m", "\n".join(lines[k : k + run]), "kv", ""))
                    k += run
                    continue
                if last_word in MATERIAL_LABELS:
                    # "Email: ...": the rest of the paragraph, and what follows, is material.
                    if " " in label:  # "Summarize this text:" is instruction too
                        instr.append(label + ":")
                    # ... up to a "Question: ..." line, if one follows in the paragraph.
                    end = k + 1
                    while end < len(lines) and not _asks_label(lines[end]):
                        end += 1
                    body = "\n".join([rest, *lines[k + 1 : end]])
                    pieces.append(("i", "\n".join(instr), "", ""))
                    instr = []
                    if body.strip():
                        pieces.append(("m", body, "label", last_word))
                    if end < len(lines):
                        k = end
                        continue
                    pending = not is_last
                    k = len(lines)
                    break
            stripped = line.rstrip()
            if stripped.endswith(":") and len(stripped) < 300:
                # "Summarize the following:" then material on the next lines / paragraphs.
                instr.append(stripped)
                body = "\n".join(lines[k + 1 :])
                pieces.append(("i", "\n".join(instr), "", ""))
                instr = []
                if body.strip():
                    pieces.append(("m", body, "colon", ""))
                pending = not is_last
                k = len(lines)
                break
            # "Extract the dates from this: <long text>" on one line.
            head, sep, tail = line.partition(": ")
            if sep and len(head) <= 120 and len(tail) >= 60:
                head_words = _words(head)
                if set(head_words[-5:]) & _POINTERS or (
                    # "summarize: <text>", "tl;dr: <text>", "translate to French: <text>"
                    0 < len(head_words) <= 4 and head_words[0] in IMPERATIVE_VERBS
                ):
                    instr.append(head + ":")
                    pieces.append(("i", "\n".join(instr), "", ""))
                    instr = []
                    pieces.append(("m", tail, "inline", ""))
                    pending = not is_last
                    k += 1
                    continue
            instr.append(line)
            k += 1
        if instr:
            pieces.append(("i", "\n".join(instr), "", ""))
            # "Turn this resume into JSON." then the resume, in the next paragraphs.
            if not is_last and (
                _LEAD_IN.search(instr[-1][-300:]) or _names_material(instr[-1][-300:])
            ):
                pending = True
    pieces = [p for p in pieces if p[1].strip()]

    # An imperative closing a line of material ("Notes: ... Write a poem about her.") is the ask.
    for k, (role, t, how, label) in enumerate(pieces):
        if role == "m" and how in ("inline", "label") and len(t) < 3000:
            sentences = _SENTENCE_END.split(t.strip())
            if len(sentences) >= 2 and len(sentences[-1]) < 300:
                if _first_word(sentences[-1]) in IMPERATIVE_VERBS:
                    pieces[k] = (role, " ".join(sentences[:-1]), how, label)
                    pieces.insert(k + 1, ("i", sentences[-1], "", ""))

    # 4. Long, unstructured text: middle paragraphs that ask nothing are material; so is a long
    #    first paragraph that asks nothing when a short ask closes the prompt. A single long
    #    paragraph keeps its first and last sentences as the instruction.
    instr_idx = [k for k, p in enumerate(pieces) if p[0] == "i"]
    total = sum(len(pieces[k][1]) for k in instr_idx)
    if total > 600 and len(instr_idx) >= 2:
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
    elif (len(instr_idx) == 2 and len(pieces[instr_idx[0]][1]) >= 150
          and len(pieces[instr_idx[1]][1]) < 200 and _asks(pieces[instr_idx[1]][1])
          and not _asks(pieces[instr_idx[0]][1])):
        # A paragraph that asks nothing, then a short question about it (reading
        # comprehension): the paragraph is material.
        k = instr_idx[0]
        pieces[k] = ("m", pieces[k][1], "para", "")
    elif len(instr_idx) == 1 and total > 900:
        k = instr_idx[0]
        sentences = _SENTENCE_END.split(pieces[k][1])
        if len(sentences) >= 4 and len(sentences[0]) < 400 and len(sentences[-1]) < 400:
            pieces[k : k + 1] = [
                ("i", sentences[0], "", ""),
                ("m", " ".join(sentences[1:-1]), "middle", ""),
                ("i", sentences[-1], "", ""),
            ]

    # A short ask, then paragraphs that ask nothing ("tl;dr", "what's the sample size? no time
    # to read it all", then the article): those paragraphs are material.
    instr_idx = [k for k, p in enumerate(pieces) if p[0] == "i"]
    if len(instr_idx) >= 2 and len(pieces[instr_idx[0]][1]) < 300 and _asks(
        pieces[instr_idx[0]][1]
    ):
        for k in instr_idx[1:]:
            t = pieces[k][1]
            if len(t) >= 150 and not _asks(t[:300] + t[-300:]):
                pieces[k] = ("m", t, "para", "")

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

    # 5. Quoted spans inside the instruction ('Translate "..." to French').
    if any(q in t for t in out.instruction for q in "\"“«"):
        kept = []
        for t in out.instruction:

            def quoted_span(m: re.Match[str]) -> str:
                body = m.group(1)
                if len(body.split()) >= 5:
                    out.passages.append(Passage(body, "quoted"))
                    return " qqq "
                return m.group(0)

            kept.append(_QUOTED_SPAN.sub(quoted_span, t))
        out.instruction = [t for t in kept if t.strip()]

    for p in out.passages:
        p.kind = passage_kind(p.text, p.label, p.how)
    return out

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


# --------------------------------------------------------------------------------------------
# Tokens
# --------------------------------------------------------------------------------------------

QUESTION_WORDS = frozenset(
    "what who whom whose when where why how which is are was were do does did can could "
    "should would will shall may might has have had whats what's whos who's hows".split()
)
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
_SNAKE = re.compile(r"[a-z0-9]_[a-z0-9]")
_CAMEL = re.compile(r"[a-z][A-Z][a-z]")
_CALL = re.compile(r"\w\([^()\n]{0,40}\)")
_DOTTED = re.compile(r"[A-Za-z_)]\.[A-Za-z_]")  # obj.attr, file.ext (a sentence's . has a space)
_FILE_EXT = re.compile(
    r"\.(py|js|ts|tsx|jsx|java|cpp|hpp|c|h|cs|go|rs|rb|php|swift|kt|sql|sh|yml|yaml|json|toml|"
    r"html|css|ipynb|csv|xlsx|exe|dll|so|jar|lock|env|cfg|ini|md)\b"
)
_ARITH = re.compile(r"\d\s*[-+*/×÷^=<>]\s*[-(]?\d|\d\s*%|[a-z]\s*\^\s*\d|\bx\s*=|=\s*\d|√|∫|∑|π")
_MONEY = re.compile(r"[$€£¥]\s?\d|\d\s?(usd|eur|dollars?|euros?|cents?)\b", re.I)
_URL = re.compile(r"https?://|www\.")
_EMAIL = re.compile(r"\b[\w.+-]+@[\w-]+\.[\w.]+\b")
_DIGIT = re.compile(r"\d")


def _digit_count(text: str) -> int:
    """ASCII digits in ``text`` (ten C-speed counts beat a regex findall several times)."""
    return sum(map(text.count, "0123456789"))
_MATH_CHARS = re.compile("[√∫∑π^×÷]")
_SYMBOL_TOKEN = re.compile(r"->|=>|==|!=|<=|>=|[%=^+*/<>{}\[\]();:$€£#@&|~√∫∑π×÷²³°]")
_ARITH_SIMPLE = re.compile(r"\d ?[-+*/×÷^=] ?\d")
_SYMBOLISH = re.compile(r"[{}\[\]<>;=|\\`#$@~^*]")


def _bucket(value: float, edges: tuple[float, ...]) -> int:
    """How many of the (ascending) ``edges`` are at or below ``value``."""
    return bisect_right(edges, value)


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


def _words(text: str) -> list[str]:
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
    r"""Lower-case words, digits as 0, accents folded: what ``_WORD.findall`` finds in the
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
            out.extend(_WORD.findall(part))
        else:
            out.append(part)
    return out


_GRAMS: dict[str, tuple[str, ...]] = {}
_GRAMS_MAX = 50_000


def grams_of(word: str) -> tuple[str, ...]:
    grams = _GRAMS.get(word)
    if grams is None:
        padded = f" {word} "
        if word[0] == NUMBER_MARK or len(word) > 30:  # numbers and run-on junk get none
            grams = ()
        else:
            grams = tuple("c:" + padded[i : i + CHAR_N] for i in range(len(padded) - CHAR_N + 1))
        if len(_GRAMS) >= _GRAMS_MAX:
            _GRAMS.clear()
        _GRAMS[word] = grams
    return grams


def _char_ngrams(words: list[str], out: list[str]) -> None:
    """Character 4-grams of each word, padded with spaces (word forms and typos)."""
    get = _GRAMS.get
    for w in words:
        grams = get(w)
        if grams is None:
            grams = grams_of(w)
        out.extend(grams)


def _cap(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    head = limit * 2 // 3
    return text[:head] + "\n" + text[-(limit - head) :]


@dataclass(frozen=True)
class Lexicon:
    """The task types' vocabularies (routes.toml ``tasks.<name>.vocabulary``), normalised the
    way prompt words are (lower case, digits as 0, accents folded, Chinese and Japanese as
    character pairs): word or phrase -> the task types whose vocabulary holds it. Each hit in
    a prompt's instruction adds an ``x:<task>`` token; the model learns from the examples how
    much such a hit is worth."""

    words: dict[str, tuple[str, ...]] = field(default_factory=dict)
    # Keyed by the phrase's words: looking up each run of a prompt's words costs a tuple, not
    # a new joined string. Two words in Latin script (the table refuses more); a Chinese or
    # Japanese entry is as many character pairs as it has characters less one ("プログラム": 4).
    phrases: dict[tuple[str, ...], tuple[str, ...]] = field(default_factory=dict)

    @classmethod
    def build(cls, vocabularies: Mapping[str, Iterable[str]]) -> Lexicon:
        words: dict[str, list[str]] = {}
        phrases: dict[tuple[str, ...], list[str]] = {}
        for task, entries in vocabularies.items():
            for entry in entries:
                parts = _words(entry)
                if not parts:
                    continue  # nothing to match (the table refuses empty entries)
                if len(parts) == 1:
                    into = words.setdefault(parts[0], [])
                else:
                    into = phrases.setdefault(tuple(parts), [])
                if task not in into:
                    into.append(task)
        return cls({k: tuple(v) for k, v in words.items()},
                   {k: tuple(v) for k, v in phrases.items()})

    @cached_property
    def _phrase_lengths(self) -> tuple[int, ...]:
        return tuple(sorted({len(k) for k in self.phrases}))

    def __bool__(self) -> bool:
        return bool(self.words or self.phrases)

    def hits(self, words: list[str]) -> list[str]:
        """One ``x:<task>`` token per vocabulary word or phrase found in ``words``."""
        out: list[str] = []
        get = self.words.get
        for found in filter(None, map(get, words)):
            out.extend("x:" + task for task in found)
        get = self.phrases.get
        for n in self._phrase_lengths:
            runs = zip(*(words[i:] for i in range(n)), strict=False)
            for found in filter(None, map(get, runs)):
                out.extend("x:" + task for task in found)
        return out


NO_LEXICON = Lexicon()


def tokens(prompt: str, lexicon: Lexicon = NO_LEXICON) -> list[str]:
    """The tokens of a prompt (with repeats): the analyzer of training and inference alike."""
    return analyze(prompt, lexicon)[0]


# What a run of a prompt's tokens is made of (see analyze_runs): tokens as they are, or words
# that become tokens by a fixed rule. Inference maps the words of a run to model columns
# through per-rule caches (LinearModel.counts), never building the token strings.
RUN_TOKENS = 0  # the tokens themselves
RUN_WORDS = 1  # instruction words: "w:" + word
RUN_BIGRAMS = 2  # instruction words, each with the next: "b:" + word + "_" + next
RUN_GRAMS = 3  # words whose character n-grams are tokens (grams_of)
RUN_PASSAGE = 4  # words of pasted material: "p:" + word

Runs = list[tuple[int, list[str]]]
# How the words of a run become tokens (shared with LinearModel.counts' caches).
WORD_PREFIX = {RUN_WORDS: "w:", RUN_PASSAGE: "p:"}
BIGRAM_TOKEN = "b:{}_{}".format


def expand(runs: Runs) -> list[str]:
    """The tokens of ``runs``, in order."""
    out: list[str] = []
    for kind, items in runs:
        if kind == RUN_TOKENS:
            out.extend(items)
        elif kind == RUN_BIGRAMS:
            out.extend(map(BIGRAM_TOKEN, items, items[1:]))
        elif kind == RUN_GRAMS:
            _char_ngrams(items, out)
        else:
            out.extend(map(WORD_PREFIX[kind].__add__, items))
    return out


def analyze(prompt: str, lexicon: Lexicon = NO_LEXICON) -> tuple[list[str], Split]:
    """The tokens of a prompt and how it was split into instruction and material."""
    runs, split = analyze_runs(prompt, lexicon)
    return expand(runs), split


def analyze_runs(prompt: str, lexicon: Lexicon = NO_LEXICON) -> tuple[Runs, Split]:
    """The tokens of a prompt as runs (see RUN_*), and how it was split into instruction and
    material. ``expand`` turns the runs into the token list."""
    size = len(prompt)
    text = clean(prompt)
    split = split_prompt(text)
    runs: Runs = []
    out: list[str] = []  # tokens as they are, until the next run of words

    # Instruction words.
    instruction = _cap("\n".join(split.instruction), INSTRUCTION_MAX_CHARS)
    words = _words(instruction)
    runs.append((RUN_WORDS, words))
    runs.append((RUN_BIGRAMS, words))
    if words:
        out.append("f:" + words[0])
        if len(words) > 1:
            out.append("f2:" + words[0] + "_" + words[1])
        sentences = _SENTENCE_END.split(split.instruction[-1].strip())
        last = (_words(sentences[-1][:300])
                if len(split.instruction) > 1 or len(sentences) > 1 else None)
        if last:
            out.append("lf:" + last[0])
            if len(last) > 1:
                out.append("lf2:" + last[0] + "_" + last[1])
    if lexicon:
        out.extend(lexicon.hits(words))
    runs.append((RUN_TOKENS, out))
    out = []
    if len(instruction) <= CHAR_NGRAM_MAX_CHARS:
        runs.append((RUN_GRAMS, words))
    else:
        runs.append((RUN_GRAMS, _words(instruction[:CHAR_NGRAM_MAX_CHARS])))

    # Pasted material.
    budget = PASSAGE_MAX_CHARS
    # Sets would be iterated in an order that changes with each process's string hashing; the
    # order of tokens sets the order of the model's columns, so training would differ from one
    # run to the next (a borderline prompt could flip). Dicts keep first-seen order.
    kinds: dict[str, None] = {}
    passage_chars = 0
    for p in split.passages:
        passage_chars += len(p.text)
        kinds[p.kind] = None
        out.append("pk:" + p.kind)
        out.append("ph:" + p.how)
        if p.label:
            out.append("pl:" + p.label.replace(" ", "_"))
        if budget > 0:
            chunk = p.text[:budget]
            budget -= len(chunk)
            runs.append((RUN_TOKENS, out))
            runs.append((RUN_PASSAGE, _words(chunk)))
            out = []
            # Numbers and sums in the material (a pasted word problem, a table of figures).
            sample = chunk[:1000]
            digits = _digit_count(sample) / max(len(sample), 1)
            out.append(f"pd:{_bucket(digits, (0.01, 0.04, 0.1, 0.2))}")
            if digits and _ARITH_SIMPLE.search(sample):
                out.append("pd:arith")

    # Shape of the whole prompt.
    out.append(f"s:len{_bucket(size, (25, 60, 150, 400, 1000, 3000, 10000))}")
    out.append(f"s:iw{_bucket(len(words), (1, 3, 6, 12, 25, 50, 100))}")
    if split.passages:
        out.append("s:passage")
        out.append(f"s:np{min(len(split.passages), 3)}")
        out.append(f"s:pshare{_bucket(passage_chars / max(len(text), 1), (0.3, 0.6, 0.85))}")
    else:
        out.append("s:nopassage")
    if words:
        if words[0] in QUESTION_WORDS:
            out.append("s:qfirst")
        if words[0] in IMPERATIVE_VERBS or (len(words) > 1 and words[0] in ("please", "pls", "plz")
                                             and words[1] in IMPERATIVE_VERBS):
            out.append("s:impfirst")
    stripped = instruction.rstrip()
    if stripped.endswith("?"):
        out.append("s:endq")
    if "?" in instruction:
        out.append("s:hasq")
    if words and instruction == instruction.lower() and len(words) <= 8 and "?" not in instruction:
        out.append("s:terse")
    probe = instruction[:PROBE_CHARS]
    if probe:
        has_digits = _DIGIT.search(probe) is not None
        digits = _digit_count(probe) / len(probe) if has_digits else 0.0
        out.append(f"s:dig{_bucket(digits, (0.001, 0.03, 0.1, 0.25))}")
        if has_digits or "=" in probe or _MATH_CHARS.search(probe):
            ariths = len(_ARITH.findall(probe))
            if ariths:
                out.append(f"s:arith{_bucket(ariths, (2, 4))}")
        syms = len(_SYMBOLISH.findall(probe)) / len(probe)
        if syms > 0:
            out.append(f"s:sym{_bucket(syms, (0.01, 0.03, 0.08))}")
        if "_" in probe and _SNAKE.search(probe):
            out.append("s:snake")
        if _CAMEL.search(probe):
            out.append("s:camel")
        if "(" in probe and _CALL.search(probe):
            out.append("s:call")
        if "." in probe:
            if _DOTTED.search(probe):
                out.append("s:dotted")
            if _FILE_EXT.search(probe):
                out.append("s:fileext")
            if "@" in probe and _EMAIL.search(probe):
                out.append("s:email")
            if ("http" in probe or "www." in probe) and _URL.search(probe):
                out.append("s:url")
        if has_digits and _MONEY.search(probe):
            out.append("s:money")
        # Operators and symbols of the ask, each once ("%", "=", "^", "{", "->", ...).
        out.extend("y:" + sym for sym in dict.fromkeys(_SYMBOL_TOKEN.findall(probe)))
        head = probe[:500]
        nonascii = (len(head) - len(head.encode("ascii", "ignore"))) / len(head)
        if nonascii > 0.3:
            out.append("s:nonlatin")
    else:
        out.append("s:noinstr")
    for kind in kinds:
        out.append("s:kind_" + kind)
    runs.append((RUN_TOKENS, out))
    return runs, split
