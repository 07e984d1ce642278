"""Text from the cluster is printed as text, never as terminal commands.

Annotations, names, comments and messages are written by people the reader may not trust:
an ANSI sequence can rewrite the screen (hide a line, fake a GREEN), a BEL or a
right-to-left override can disguise what is shown. Every control and format character is
printed as its escape (`\\x1b`, `\\u202e`) instead.
"""

from __future__ import annotations

import os
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TextIO

#: Control (Cc), format (Cf: bidi overrides, zero-width), line and paragraph separators.
_UNSAFE_CATEGORIES = frozenset({"Cc", "Cf", "Zl", "Zp"})


def _escape(char: str) -> str:
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def printable(text: str) -> str:
    """`text` with every character that a terminal would act on shown as its escape."""
    if text.isprintable():
        return text
    return "".join(
        _escape(char) if unicodedata.category(char) in _UNSAFE_CATEGORIES else char for char in text
    )


def printable_tree(value: Any) -> Any:
    """`printable` applied to every string (keys too) of a JSON-like value."""
    if isinstance(value, str):
        return printable(value)
    if isinstance(value, Mapping):
        return {printable_tree(key): printable_tree(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [printable_tree(item) for item in value]
    return value


# Colour. Escape codes are added only after text is laid out (widths are counted on the
# text itself) and only for a person at a terminal: piped output is read by programs,
# and NO_COLOR (https://no-color.org: set and not empty) is the reader saying no.

_CODES = {"ok": "32", "bad": "31", "warn": "33", "info": "94", "dim": "2", "bold": "1"}


def colour_wanted(stream: TextIO) -> bool:
    """True for a terminal, unless NO_COLOR is set to anything but the empty string."""
    if os.environ.get("NO_COLOR"):
        return False
    try:
        return stream.isatty()
    except (ValueError, AttributeError):  # closed, or not a real stream
        return False


@dataclass(frozen=True)
class Text:
    """Text in spans, each with a style kind ('' for none): laid out by its plain length,
    painted at the end."""

    spans: tuple[tuple[str, str], ...] = ()

    def __len__(self) -> int:
        return sum(len(part) for part, _ in self.spans)

    def __add__(self, other: Text | str) -> Text:
        more = other.spans if isinstance(other, Text) else ((other, ""),)
        return Text(self.spans + more)

    def __radd__(self, other: str) -> Text:
        return Text(((other, ""), *self.spans))

    @property
    def plain(self) -> str:
        return "".join(part for part, _ in self.spans)

    def ljust(self, width: int) -> Text:
        return self + " " * (width - len(self)) if len(self) < width else self

    def render(self, colour: bool) -> str:
        if not colour:
            return self.plain
        return "".join(
            f"\033[{_CODES[kind]}m{part}\033[0m" if kind in _CODES and part else part
            for part, kind in self.spans
        )


def styled(text: str, kind: str = "") -> Text:
    """`text` (already made printable) in one style."""
    return Text(((text, kind),))


def join(parts: Sequence[Text | str], separator: str = "  ") -> Text:
    result = Text()
    for index, part in enumerate(parts):
        result = result + (separator if index else "") + part
    return result
