"""Untrusted text made safe to show: no terminal escapes, no markup, no keys.

Model output, prompts, error bodies and names read from routes.toml come from outside. Before any
of it reaches a terminal it goes through :func:`clean` (or a :class:`StreamCleaner` for a stream
of chunks), which removes every C0/C1 control character and every escape sequence (CSI, OSC such
as OSC 52 "write the clipboard", DCS, SOS/PM/APC strings, two-byte ESC sequences, lone ESC, and
their 8-bit C1 forms) but keeps newline and tab. Carriage returns are dropped, so ``\\r\\n``
becomes ``\\n`` and a lone ``\\r`` cannot rewrite a line already shown.

A string sequence (OSC, DCS, ...) that is never terminated swallows the rest of the text, as a
terminal would; a CSI or ESC sequence without its final byte ends at the first character that
cannot belong to it. ``clean(a + b) == cleaner.feed(a) + cleaner.feed(b) + cleaner.flush()`` holds
for any split, so a sequence cut across two network chunks is removed as a whole.

:func:`safe_text` wraps text in a plain ``rich.text.Text`` (never parsed as markup), and
:func:`redact` replaces keys with ``***``. Text without control characters is returned as it is
after one regular-expression scan, so cleaning every streamed chunk costs next to nothing.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

from rich.text import Text

# Every character that is, or starts, something a terminal interprets: C0 except tab and newline,
# DEL, and the C1 range (U+0080..U+009F). Carriage return is among them.
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")

# One escape sequence or control character. Alternatives, in order:
#   str:  a string sequence: ESC ] (OSC), ESC P (DCS), ESC X (SOS), ESC ^ (PM), ESC _ (APC) or the
#         8-bit forms; its body runs to BEL, ST (ESC \ or 0x9C), or up to an ESC that starts
#         something else (terminals abort the string there), or to the end of the text.
#   csi:  ESC [ or 0x9B, parameter bytes 0x30-0x3F, intermediate bytes 0x20-0x2F, a final byte.
#   esc:  ESC, intermediate bytes, a final byte 0x30-0x7E (ESC ( B, ESC 7, ESC c, ESC \ ...).
#   any other control character alone (including a lone ESC and lone C1 characters).
_SEQUENCE = re.compile(
    "(?P<str>(?:\x1b[]PX^_]|[\x90\x98\x9d\x9e\x9f])[^\x07\x1b\x9c]*)(?P<str_end>\x07|\x1b\\\\|\x9c)?"
    "|(?P<csi>\x1b\\[|\x9b)(?P<csi_params>[\x30-\x3f]*)(?P<csi_inter>[\x20-\x2f]*)(?P<csi_end>[\x40-\x7e])?"
    "|(?P<esc>\x1b)(?P<esc_inter>[\x20-\x2f]*)(?P<esc_end>[\x30-\x7e])?"
    "|[\x00-\x08\x0b-\x1f\x7f-\x9f]"
)


def clean(text: str) -> str:
    """``text`` without control characters and escape sequences; newline and tab are kept."""
    if not _CONTROL.search(text):
        return text
    return _SEQUENCE.sub("", text)


class StreamCleaner:
    """:func:`clean` for a stream of chunks, where an escape sequence may be split between two.

    ``feed`` returns the safe part of each chunk at once; only the beginning of an unfinished
    escape sequence is held back (a few characters at most, never the body of a long OSC
    string). ``flush`` at the end of the stream drops whatever unfinished sequence is left.
    """

    __slots__ = ("_pending",)

    def __init__(self) -> None:
        # The start of an unfinished sequence, to be put in front of the next chunk. For a string
        # sequence only its introducer is kept (its body is discarded as it arrives).
        self._pending = ""

    def feed(self, chunk: str) -> str:
        data = self._pending + chunk if self._pending else chunk
        self._pending = ""
        if not _CONTROL.search(data):
            return data
        out: list[str] = []
        pos = 0
        end = len(data)
        for m in _SEQUENCE.finditer(data):
            out.append(data[pos : m.start()])
            pos = m.end()
            if pos == end:
                self._pending = _unfinished(m)
        out.append(data[pos:])
        return "".join(out)

    def flush(self) -> str:
        """End of stream: an unfinished sequence is dropped. Returns "" (for symmetry with feed)."""
        self._pending = ""
        return ""


def _unfinished(m: re.Match[str]) -> str:
    """What must be kept of a sequence that reached the end of the data to finish it later."""
    if m.group("str") is not None:
        if m.group("str_end") is None:
            intro = m.group("str")
            return intro[:2] if intro[0] == "\x1b" else intro[0]
        return ""
    if m.group("csi") is not None:
        if m.group("csi_end") is None:
            # Parameters already seen change nothing about what may follow; one intermediate byte
            # does (no more parameters may come), so keep the last one.
            return m.group("csi") + m.group("csi_inter")[-1:]
        return ""
    if m.group("esc") is not None and m.group("esc_end") is None:
        return "\x1b" + m.group("esc_inter")[-1:]
    return ""


def safe_text(text: str, style: str = "") -> Text:
    """A plain Rich ``Text`` of cleaned ``text``: shown as it is, never parsed as markup."""
    return Text(clean(text), style=style)


# Shapes of keys that are redacted even when their value is not known: OpenAI and Anthropic keys
# (sk-..., sk-proj-..., sk-ant-...), bearer tokens, and a few other providers' key formats.
_KEY_SHAPES = re.compile(
    r"\bsk-(?:ant-)?[A-Za-z0-9_\-]{8,}"
    r"|\bgsk_[A-Za-z0-9]{16,}"  # Groq
    r"|\bpplx-[A-Za-z0-9]{16,}"  # Perplexity
    r"|\bAIza[0-9A-Za-z_\-]{30,}"  # Google
)
_BEARER = re.compile(r"(\bBearer\s+)[A-Za-z0-9._~+/=\-]{8,}", re.IGNORECASE)
_HEADER_KEY = re.compile(r"(\b(?:x-api-key|api[-_]key)[\"']?\s*[:=]\s*[\"']?)[^\s\"',;}]{8,}", re.IGNORECASE)

REDACTED = "***"


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """``text`` with every given secret value, and anything shaped like a key, replaced by ``***``.

    Secrets shorter than 4 characters are ignored (replacing them would shred ordinary text).
    """
    for secret in sorted({s for s in secrets if s and len(s) >= 4}, key=len, reverse=True):
        if secret in text:
            text = text.replace(secret, REDACTED)
    text = _KEY_SHAPES.sub(REDACTED, text)
    text = _BEARER.sub(lambda m: m.group(1) + REDACTED, text)
    return _HEADER_KEY.sub(lambda m: m.group(1) + REDACTED, text)


_SECRET_NAME = re.compile(r"(?:^|_)(?:API_?KEY|KEY|TOKEN|SECRET|PASSWORD)$", re.IGNORECASE)


def env_secrets(env: Mapping[str, str], names: Iterable[str | None] = ()) -> tuple[str, ...]:
    """Values to redact: those of the named variables (a table's ``api_key_env``), and of every
    variable whose name says it holds a key (``*_API_KEY``, ``*_KEY``, ``*_TOKEN``, ``*_SECRET``,
    ``*_PASSWORD``), at least 8 characters long."""
    wanted = {n for n in names if n}
    out = {
        v
        for k, v in env.items()
        if v and (k in wanted or (len(v) >= 8 and _SECRET_NAME.search(k)))
    }
    return tuple(sorted(out, key=len, reverse=True))


_SURROGATE = re.compile("[\ud800-\udfff]")


def clean_surrogates(text: str) -> str:
    """``text`` with every lone surrogate (what ``surrogateescape`` makes of bytes that are not
    UTF-8, e.g. in ``sys.argv``) replaced by U+FFFD, so it can be encoded, stored and shown."""
    if not _SURROGATE.search(text):
        return text
    return _SURROGATE.sub("\ufffd", text)


# The start of a key shape (see _KEY_SHAPES): a word that begins like one may be a key whose
# rest is still to come in the next chunk of a stream.
_SHAPE_STARTS = ("sk-", "gsk_", "pplx-", "AIza")
_TOKEN_TAIL = re.compile(r"[A-Za-z0-9_\-]+\Z")
# A held-back word longer than this is let through (redacted as far as it is known).
_MAX_HOLD = 512


class StreamRedactor:
    """:func:`redact` for a stream of chunks, where a key may be split between two.

    ``feed`` returns the chunk with keys replaced by ``***``, holding back only a tail that may
    be the start of a key: a prefix of a given secret, or a word that starts like a key shape
    (``sk-...``) and has not ended yet. ``flush`` at the end returns what was held back,
    redacted. Ordinary text passes at once, so the time to first token does not change.
    """

    __slots__ = ("_pending", "_secrets")

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._secrets = tuple(sorted({s for s in secrets if s and len(s) >= 4}, key=len))
        self._pending = ""

    def feed(self, chunk: str) -> str:
        data = self._pending + chunk if self._pending else chunk
        hold = self._hold(data)
        self._pending = data[len(data) - hold :] if hold else ""
        return redact(data[: len(data) - hold], self._secrets) if hold else redact(data, self._secrets)

    def flush(self) -> str:
        out = redact(self._pending, self._secrets) if self._pending else ""
        self._pending = ""
        return out

    def _hold(self, data: str) -> int:
        hold = 0
        for secret in self._secrets:
            for n in range(min(len(secret) - 1, len(data)), hold, -1):
                if data.endswith(secret[:n]):
                    hold = n
                    break
        if m := _TOKEN_TAIL.search(data):
            word = m.group()
            start_ok = m.start() == 0 or not data[m.start() - 1].isalnum()
            if start_ok and len(word) <= _MAX_HOLD and any(
                word.startswith(s) or s.startswith(word) for s in _SHAPE_STARTS
            ):
                hold = max(hold, len(word))
        return hold


def configured_secrets(env: Mapping[str, str], table: object | None = None) -> tuple[str, ...]:
    """The values to redact for a routing table: every variable named by a provider's
    ``api_key_env`` (whatever its name or the shape of its value), plus the environment's
    key-like variables (see :func:`env_secrets`)."""
    providers = getattr(table, "providers", None) or {}
    names = [getattr(p, "api_key_env", None) for p in providers.values()]
    return env_secrets(env, names)
