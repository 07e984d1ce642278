"""Text from the cluster is printed as text, never as terminal commands.

Annotations, names, comments and messages are written by people the reader may not trust:
an ANSI sequence can rewrite the screen (hide a line, fake a GREEN), a BEL or a
right-to-left override can disguise what is shown. Every control and format character is
printed as its escape (`\\x1b`, `\\u202e`) instead.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping
from typing import Any

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
