"""The tree the status view draws: nodes with a label and a line of detail, laid out with
box-drawing branches and the details aligned in one column.

A tree shows what belongs to what (a role to the gate, a Deployment to its release)
without headings for every group; aligned details let the eye run down one column for
the answers. Layout works on `Text`, so that colour never skews the alignment.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from aideploy.cli.terminal import Text, styled

#: Details start here at the latest: a long label pushes only its own detail right.
MAX_LABEL_COLUMN = 40

OK, BAD, WARN, INFO = "✔", "✖", "◷", "●"


@dataclass
class Node:
    label: Text
    detail: Text = field(default_factory=Text)
    children: list[Node] = field(default_factory=list)


def node(label: Text | str, detail: Text | str = "", children: Sequence[Node] = ()) -> Node:
    return Node(
        label if isinstance(label, Text) else styled(label),
        detail if isinstance(detail, Text) else styled(detail),
        list(children),
    )


def mark(ok: bool | None, label: str, waiting: bool = False) -> Text:
    """'✔ label' in green, '✖ label' in red, or '◷ label' (waiting, not failed) in yellow."""
    if ok:
        return styled(OK, "ok") + " " + label
    if waiting or ok is None:
        return styled(WARN, "warn") + " " + label
    return styled(BAD, "bad") + " " + label


def _walk(item: Node, prefix: str, child_prefix: str) -> Iterator[tuple[str, Node]]:
    yield prefix, item
    for index, child in enumerate(item.children):
        last = index == len(item.children) - 1
        yield from _walk(
            child,
            child_prefix + ("└── " if last else "├── "),
            child_prefix + ("    " if last else "│   "),
        )


def layout(root: Node) -> list[Text]:
    """Every node on its own line under its parent; details aligned where labels allow."""
    rows = list(_walk(root, "", ""))
    column = min(max(len(prefix) + len(n.label) for prefix, n in rows), MAX_LABEL_COLUMN) + 2
    lines = []
    for prefix, item in rows:
        line = styled(prefix, "dim") + item.label
        if len(item.detail):
            line = line.ljust(column) if len(line) + 2 <= column else line + "  "
            line = line + item.detail
        lines.append(line)
    return lines


def columns(rows: Sequence[Sequence[Text | str]]) -> list[Text]:
    """Cells padded to their column's widest, two spaces apart; the last never padded. For
    the details of sibling nodes (probes, Events), so that their values line up."""
    cells = [[c if isinstance(c, Text) else styled(c) for c in row] for row in rows]
    widths: dict[int, int] = {}
    for row in cells:
        for index, cell in enumerate(row[:-1]):
            widths[index] = max(widths.get(index, 0), len(cell))
    result = []
    for row in cells:
        line = Text()
        for index, cell in enumerate(row):
            last = index == len(row) - 1
            line = line + (cell if last else cell.ljust(widths[index])) + ("" if last else "  ")
        result.append(line)
    return result
