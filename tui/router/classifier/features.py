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

The splitting is :mod:`tui.router.classifier.split`'s and the words are
:mod:`tui.router.classifier.words`'; this module turns them into tokens.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cached_property

from tui.router.classifier.split import (
    SENTENCE_END,
    SYMBOLISH,
    Passage,
    Split,
    split_prompt,
)
from tui.router.classifier.words import IMPERATIVE_VERBS, NUMBER_MARK, split_words

# Bump when tokens, or how a model is trained from them, change: the on-disk model cache is
# keyed by it.
FEATURE_VERSION = 33

HEAD_CHARS = 5_000  # of a huge prompt, the head and the tail are featurized ...
TAIL_CHARS = 2_000  # ... (instructions sit at the start or the end)
INSTRUCTION_MAX_CHARS = 1_000  # instruction text featurized at most (1,500 scored the same)
CHAR_NGRAM_MAX_CHARS = 300  # instruction text that gets character n-grams (600 scored the same)
CHAR_N = 4  # character n-gram size
PASSAGE_MAX_CHARS = 1_000  # material text featurized at most, over all passages (idem)
PROBE_CHARS = 400  # instruction text looked at for digits, operators, identifiers (idem)

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
# Tokens
# --------------------------------------------------------------------------------------------

QUESTION_WORDS = frozenset(
    "what who whom whose when where why how which is are was were do does did can could "
    "should would will shall may might has have had whats what's whos who's hows".split()
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


def _bucket(value: float, edges: tuple[float, ...]) -> int:
    """How many of the (ascending) ``edges`` are at or below ``value``."""
    return bisect_right(edges, value)

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
                parts = split_words(entry)
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
        get_phrase = self.phrases.get
        for n in self._phrase_lengths:
            runs = zip(*(words[i:] for i in range(n)), strict=False)
            for found in filter(None, map(get_phrase, runs)):
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
    instruction, words = _instruction_runs(split, lexicon, runs)
    # Sets would be iterated in an order that changes with each process's string hashing; the
    # order of tokens sets the order of the model's columns, so training would differ from one
    # run to the next (a borderline prompt could flip). Dicts keep first-seen order.
    kinds: dict[str, None] = {}
    out = _passage_runs(split.passages, kinds, runs)
    _shape_tokens(out, size, text, split, instruction, words)
    probe = instruction[:PROBE_CHARS]
    if probe:
        _probe_tokens(probe, out)
    else:
        out.append("s:noinstr")
    for kind in kinds:
        out.append("s:kind_" + kind)
    runs.append((RUN_TOKENS, out))
    return runs, split


def _instruction_runs(split: Split, lexicon: Lexicon, runs: Runs) -> tuple[str, list[str]]:
    """Instruction words: their runs, first words, vocabulary hits and character n-grams
    appended to ``runs``; returns the instruction text (capped) and its words."""
    out: list[str] = []  # tokens as they are, until the next run of words
    instruction = _cap("\n".join(split.instruction), INSTRUCTION_MAX_CHARS)
    words = split_words(instruction)
    runs.append((RUN_WORDS, words))
    runs.append((RUN_BIGRAMS, words))
    if words:
        out.append("f:" + words[0])
        if len(words) > 1:
            out.append("f2:" + words[0] + "_" + words[1])
        sentences = SENTENCE_END.split(split.instruction[-1].strip())
        last = (split_words(sentences[-1][:300])
                if len(split.instruction) > 1 or len(sentences) > 1 else None)
        if last:
            out.append("lf:" + last[0])
            if len(last) > 1:
                out.append("lf2:" + last[0] + "_" + last[1])
    if lexicon:
        out.extend(lexicon.hits(words))
    runs.append((RUN_TOKENS, out))
    if len(instruction) <= CHAR_NGRAM_MAX_CHARS:
        runs.append((RUN_GRAMS, words))
    else:
        runs.append((RUN_GRAMS, split_words(instruction[:CHAR_NGRAM_MAX_CHARS])))
    return instruction, words


def _passage_runs(passages: list[Passage], kinds: dict[str, None], runs: Runs) -> list[str]:
    """Pasted material: each passage's kind, how it was found and its label, and the words of
    the first ``PASSAGE_MAX_CHARS`` characters of material, appended to ``runs``; each kind
    noted in ``kinds``. Returns the tokens that follow the last run of words."""
    budget = PASSAGE_MAX_CHARS
    out: list[str] = []
    for p in passages:
        kinds[p.kind] = None
        out.append("pk:" + p.kind)
        out.append("ph:" + p.how)
        if p.label:
            out.append("pl:" + p.label.replace(" ", "_"))
        if budget > 0:
            chunk = p.text[:budget]
            budget -= len(chunk)
            runs.append((RUN_TOKENS, out))
            runs.append((RUN_PASSAGE, split_words(chunk)))
            out = []
            # Numbers and sums in the material (a pasted word problem, a table of figures).
            sample = chunk[:1000]
            digits = _digit_count(sample) / max(len(sample), 1)
            out.append(f"pd:{_bucket(digits, (0.01, 0.04, 0.1, 0.2))}")
            if digits and _ARITH_SIMPLE.search(sample):
                out.append("pd:arith")
    return out


def _shape_tokens(
    out: list[str], size: int, text: str, split: Split, instruction: str, words: list[str]
) -> None:
    """Shape of the whole prompt: its length, the instruction's length, how much of it is
    material, whether it opens with a question word or an order, ends with a question."""
    out.append(f"s:len{_bucket(size, (25, 60, 150, 400, 1000, 3000, 10000))}")
    out.append(f"s:iw{_bucket(len(words), (1, 3, 6, 12, 25, 50, 100))}")
    if split.passages:
        passage_chars = sum(len(p.text) for p in split.passages)
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


def _probe_tokens(probe: str, out: list[str]) -> None:
    """What the start of the instruction holds: digits, sums, symbols, identifiers, files,
    addresses, money, operators, another script."""
    has_digits = _DIGIT.search(probe) is not None
    digits = _digit_count(probe) / len(probe) if has_digits else 0.0
    out.append(f"s:dig{_bucket(digits, (0.001, 0.03, 0.1, 0.25))}")
    if has_digits or "=" in probe or _MATH_CHARS.search(probe):
        ariths = len(_ARITH.findall(probe))
        if ariths:
            out.append(f"s:arith{_bucket(ariths, (2, 4))}")
    syms = len(SYMBOLISH.findall(probe)) / len(probe)
    if syms > 0:
        out.append(f"s:sym{_bucket(syms, (0.01, 0.03, 0.08))}")
    _identifier_tokens(probe, out)
    if has_digits and _MONEY.search(probe):
        out.append("s:money")
    # Operators and symbols of the ask, each once ("%", "=", "^", "{", "->", ...).
    out.extend("y:" + sym for sym in dict.fromkeys(_SYMBOL_TOKEN.findall(probe)))
    head = probe[:500]
    nonascii = (len(head) - len(head.encode("ascii", "ignore"))) / len(head)
    if nonascii > 0.3:
        out.append("s:nonlatin")


def _identifier_tokens(probe: str, out: list[str]) -> None:
    """Code-like names and addresses: snake_case, camelCase, calls, dotted names, file names,
    e-mail addresses, URLs."""
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
