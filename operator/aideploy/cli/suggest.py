""" "Did you mean" for roles and checklist items: a misspelling is refused, and the refusal
names the closest valid value, so that the next command is the right one.

Pure functions (no cluster): the suggestions depend only on the procedure's fixed lists.
"""

from __future__ import annotations

import difflib
import re

from aideploy.api.constants import CHECKLIST_ITEMS, Role

ROLES = tuple(r.value for r in Role)
_SEPARATORS = re.compile(r"[\s_]+")
_ITEM_SEPARATORS = re.compile(r"[\s,_/-]+")


def suggest_role(given: str) -> str | None:
    """The role `given` most likely meant: case and `_`/space for `-`, initials (`dm`), a
    prefix (`qa`, `compliance`), else the closest spelling; None when nothing is close."""
    normalized = _SEPARATORS.sub("-", given.strip().lower())
    if normalized in ROLES:
        return normalized
    initials = {"".join(part[0] for part in r.split("-")): r for r in ROLES}
    if normalized in initials:  # dm, so, rm, ...
        return initials[normalized]
    prefixed = [r for r in ROLES if normalized and r.startswith(normalized)]
    if len(prefixed) == 1:
        return prefixed[0]
    close = difflib.get_close_matches(normalized, ROLES, n=1, cutoff=0.6)
    return close[0] if close else None


def suggest_item(given: str) -> str | None:
    """The checklist item `given` most likely meant: `2,1`, `2-1` or `21` for 2.1, a title
    (`integration testing`), or the closest item of the same section (`2.7` -> 2.6)."""
    normalized = _ITEM_SEPARATORS.sub(".", given.strip().lower()).strip(".")
    if re.fullmatch(r"\d\d", normalized):  # the dot left out
        normalized = f"{normalized[0]}.{normalized[1]}"
    if normalized in CHECKLIST_ITEMS:
        return normalized
    titles = {title.lower(): item for item, title in CHECKLIST_ITEMS.items()}
    wanted = given.strip().lower()
    if len(wanted) >= 3:
        containing = [item for title, item in titles.items() if wanted in title]
        if len(containing) == 1:
            return containing[0]
        close_titles = difflib.get_close_matches(wanted, titles, n=1, cutoff=0.6)
        if close_titles:
            return titles[close_titles[0]]
    section = normalized.split(".")[0]
    same_section = [item for item in CHECKLIST_ITEMS if item.split(".")[0] == section]
    close = difflib.get_close_matches(normalized, same_section, n=1, cutoff=0.6)
    return close[0] if close else None


def did_you_mean(suggestion: str | None) -> str:
    """' (did you mean X?)', or nothing when there is no suggestion."""
    return f" (did you mean {suggestion}?)" if suggestion else ""
