"""Line numbers for problems: ``tomllib`` gives none, so :class:`_Locator` scans the TOML text for
table headers, dotted keys, inline tables and array elements and maps every key path to its line.
It only runs when there is a problem to report."""

from __future__ import annotations

import bisect
import contextlib
import re
import tomllib

from tui.router.table.check import BARE_KEY, KeyPath, Problem, format_key_path


def locate_problems(items: list[tuple[KeyPath, str]], label: str, text: str | None) -> list[Problem]:
    locator = _Locator(text) if text is not None else None
    seen: set[tuple[KeyPath, str]] = set()
    out: list[Problem] = []
    for path, message in items:
        if (path, message) in seen:
            continue
        seen.add((path, message))
        line = locator.line_of(path) if locator is not None else None
        out.append(Problem(label, line, format_key_path(path), message))
    # In the order of the file; problems with no line (missing sections) first.
    return sorted(out, key=lambda pr: pr.line or 0)





class _Stop(Exception):
    pass


_WS = re.compile(r"[ \t]*")
_WS_NL_COMMENTS = re.compile(r"(?:[ \t\r\n]+|#[^\n]*)*")
_BASIC_STR = re.compile(r'"(?:[^"\\\n]|\\.)*"')
_LITERAL_STR = re.compile(r"'[^'\n]*'")
_ML_BASIC_STR = re.compile(r'"""(?:[^\\]|\\.)*?"""(?:""?(?!"))?', re.DOTALL)
_ML_LITERAL_STR = re.compile(r"'''.*?'''(?:''?(?!'))?", re.DOTALL)
_DATETIME = re.compile(
    r"\d{4}-\d\d-\d\d(?:[Tt ]\d\d:\d\d(?::\d\d)?(?:\.\d+)?(?:[Zz]|[+-]\d\d:\d\d)?)?"
)
_SCALAR = re.compile(r"[^\s,\]\}#]+")


class _Locator:
    """Maps key paths to the line where they appear in a TOML text (which parsed without error).

    Knows table headers (``[a."b c".d]``, ``[[a]]``), dotted keys, inline tables and array
    elements (path ``(..., "examples", 3)``). A path not found is looked up by its parents, so a
    missing key points at its table's header.
    """

    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0
        self.newlines = [m.start() for m in re.finditer("\n", text)]
        self.lines: dict[KeyPath, int] = {}
        with contextlib.suppress(_Stop, IndexError, tomllib.TOMLDecodeError):
            self._scan()

    def line_of(self, path: KeyPath) -> int | None:
        for n in range(len(path), 0, -1):
            if (line := self.lines.get(path[:n])) is not None:
                return line
        return None

    # -- scanning ------------------------------------------------------------------------------

    def _line(self, pos: int) -> int:
        return bisect.bisect_left(self.newlines, pos) + 1

    def _record(self, base: KeyPath, key: KeyPath, pos: int) -> None:
        line = self._line(pos)
        for n in range(1, len(key) + 1):
            self.lines.setdefault(base + key[:n], line)

    def _skip(self, pattern: re.Pattern[str]) -> None:
        m = pattern.match(self.text, self.pos)
        if m:
            self.pos = m.end()

    def _peek(self, s: str) -> bool:
        return self.text.startswith(s, self.pos)

    def _expect(self, s: str) -> None:
        if not self._peek(s):
            raise _Stop
        self.pos += len(s)

    def _key(self) -> KeyPath:
        parts: list[str | int] = []
        while True:
            self._skip(_WS)
            text, pos = self.text, self.pos
            if m := _BASIC_STR.match(text, pos):
                parts.append(tomllib.loads("k = " + m.group())["k"])
            elif m := _LITERAL_STR.match(text, pos):
                parts.append(m.group()[1:-1])
            elif m := BARE_KEY.match(text, pos):
                parts.append(m.group())
            else:
                raise _Stop
            self.pos = m.end()
            self._skip(_WS)
            if not self._peek("."):
                return tuple(parts)
            self.pos += 1

    def _scan(self) -> None:
        current: KeyPath = ()
        tables_of_arrays: dict[KeyPath, int] = {}
        n = len(self.text)
        while True:
            self._skip(_WS_NL_COMMENTS)
            if self.pos >= n:
                return
            start = self.pos
            if self._peek("[["):
                self.pos += 2
                key = self._key()
                self._expect("]]")
                index = tables_of_arrays.get(key, -1) + 1
                tables_of_arrays[key] = index
                current = key + (index,)
                self._record((), current, start)
            elif self._peek("["):
                self.pos += 1
                current = self._key()
                self._expect("]")
                self._record((), current, start)
            else:
                key = self._key()
                self._expect("=")
                self._skip(_WS)
                self._record(current, key, start)
                self._value(current + key)
            # The rest of the line: spaces and a comment.
            self._skip(_WS)
            if self.pos < n and self.text[self.pos] == "#":
                self._skip(_WS_NL_COMMENTS)
            elif self.pos < n and self.text[self.pos] not in "\r\n":
                end = self.text.find("\n", self.pos)
                self.pos = n if end < 0 else end

    def _value(self, path: KeyPath) -> None:
        text, pos = self.text, self.pos
        ch = text[pos]
        if ch == "[":
            self.pos += 1
            index = 0
            while True:
                self._skip(_WS_NL_COMMENTS)
                if self._peek("]"):
                    self.pos += 1
                    return
                self._record(path, (index,), self.pos)
                self._value(path + (index,))
                self._skip(_WS_NL_COMMENTS)
                if self._peek(","):
                    self.pos += 1
                    index += 1
                elif not self._peek("]"):
                    raise _Stop
        elif ch == "{":
            self.pos += 1
            while True:
                self._skip(_WS_NL_COMMENTS)
                if self._peek("}"):
                    self.pos += 1
                    return
                start = self.pos
                key = self._key()
                self._expect("=")
                self._skip(_WS)
                self._record(path, key, start)
                self._value(path + key)
                self._skip(_WS_NL_COMMENTS)
                if self._peek(","):
                    self.pos += 1
                elif not self._peek("}"):
                    raise _Stop
        else:
            for pattern in (
                _ML_BASIC_STR,
                _ML_LITERAL_STR,
                _BASIC_STR,
                _LITERAL_STR,
                _DATETIME,
                _SCALAR,
            ):
                if m := pattern.match(text, pos):
                    self.pos = m.end()
                    return
            raise _Stop

