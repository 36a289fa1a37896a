"""The regular expressions searches accept, and their matching on SQLite.

The dialect is RE2's syntax where PostgreSQL's AREs and MariaDB's PCRE2 read it the same way,
so a pattern means one thing on every backend and none can backtrack on SQLite:

- groups `( )` and `(?: )` nested at most `MAX_NESTING` deep; no other `(?` construct (flags,
  names, lookaround);
- repetitions `*`, `+`, `?`, their lazy forms, and `{m}`, `{m,}`, `{m,n}` with bounds of at
  most `MAX_REPEAT` (PostgreSQL's limit); a `{` that starts no repetition is written `\\{`;
- backslash escapes: `\\d \\D \\s \\S \\w \\W`, `\\n \\t \\r \\f \\v`, and any other character
  that is not a letter or digit, taken literally;
- bracket expressions, with POSIX classes such as `[[:alpha:]]` but no collating elements
  (`[[.a.]]`) nor equivalence classes (`[[=a=]]`), and no range from a class (`[\\d-z]`);
- no repetition of an anchor (`^*`).
"""

from __future__ import annotations

from functools import lru_cache

import re2

MAX_REPEAT = 255
MAX_NESTING = 100
# Letters and digits that follow a backslash: the classes, then the control characters.
_ESCAPES = frozenset("dDsSwWntrfv")
_CLASSES = frozenset("dDsSwW")


class DialectError(ValueError):
    """A pattern outside the dialect; the text says why."""


def _options(caseless: bool) -> re2.Options:
    options = re2.Options()
    options.log_errors = False
    options.case_sensitive = not caseless
    return options


@lru_cache(maxsize=256)
def compiled(pattern: str, caseless: bool = False) -> re2._Regexp:
    """The pattern compiled by RE2 (linear time in the text, whatever the pattern)."""
    try:
        return re2.compile(pattern, _options(caseless))
    except re2.error as error:
        reason = error.args[0] if error.args else "RE2 cannot compile it"
        raise DialectError(reason.decode() if isinstance(reason, bytes) else str(reason)) from None


def check(pattern: str) -> None:
    """Raises DialectError if the pattern is outside the dialect."""
    _scan(pattern)
    compiled(pattern)


def _scan(pattern: str) -> None:
    depth = 0
    index = 0
    end = len(pattern)
    previous = ""
    while index < end:
        char = pattern[index]
        if char in "*+?{" and previous in ("^", "$"):
            raise DialectError(f"{previous} cannot be repeated")
        previous = char
        if char == "\\":
            index = _escape(pattern, index)
            continue
        if char == "[":
            index = _bracket(pattern, index)
            continue
        if char == "(":
            if pattern.startswith("(?", index) and not pattern.startswith("(?:", index):
                raise DialectError(
                    f"the construct at {pattern[index : index + 3]!r} is not supported"
                )
            depth += 1
            if depth > MAX_NESTING:
                raise DialectError(f"groups are nested more than {MAX_NESTING} deep")
        elif char == ")":
            depth -= 1
        elif char == "{":
            index = _repetition(pattern, index)
            continue
        index += 1


def _escape(pattern: str, index: int) -> int:
    """The index after the escape at `index`."""
    escaped = pattern[index + 1 : index + 2]
    if escaped.isascii() and escaped.isalnum() and escaped not in _ESCAPES:
        raise DialectError(f"the escape \\{escaped} is not supported")
    return index + 2


def _bracket(pattern: str, index: int) -> int:
    """The index after the bracket expression starting at `index` (RE2 checks its closing)."""
    index += 1
    if pattern.startswith("^", index):
        index += 1
    if pattern.startswith("]", index):
        index += 1  # a leading `]` is literal
    while index < len(pattern) and pattern[index] != "]":
        if pattern[index] == "\\":
            escape = pattern[index : index + 2]
            index = _escape(pattern, index)
            if (
                escape[1:] in _CLASSES
                and pattern.startswith("-", index)
                and not pattern.startswith("-]", index)
            ):
                raise DialectError(f"a range cannot start at {escape}")
        elif pattern.startswith(("[.", "[="), index):
            raise DialectError(
                f"{pattern[index : index + 2]!r} in a bracket expression is not supported"
            )
        elif pattern.startswith("[:", index):
            closing = pattern.find(":]", index + 2)
            index = closing + 2 if closing >= 0 else index + 1
        else:
            index += 1
    return index + 1


def _repetition(pattern: str, index: int) -> int:
    """The index after the `{m}`, `{m,}` or `{m,n}` at `index`, its bounds checked."""
    closing = pattern.find("}", index)
    bounds = pattern[index + 1 : closing].split(",") if closing >= 0 else []
    digits = [bound for bound in bounds if bound.isascii() and bound.isdigit()]
    well_formed = len(bounds) in (1, 2) and bounds[0] in digits and bounds[-1] in (*digits, "")
    if not well_formed:
        raise DialectError("a { starts no repetition {m}, {m,} or {m,n} (write \\{ for the brace)")
    if any(int(bound) > MAX_REPEAT for bound in digits):
        raise DialectError(f"a repetition bound is larger than {MAX_REPEAT}")
    return closing + 1


def search(pattern: str | None, value: object, caseless: bool = False) -> bool | None:
    """SQL's `value REGEXP pattern`: NULL if either is NULL."""
    if pattern is None or value is None:
        return None
    return compiled(pattern, caseless).search(str(value)) is not None
