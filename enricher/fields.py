"""Field lookup on decoded events.

Shippers send the same field in different shapes: nested objects
(``{"process": {"parent": {"executable": ...}}}``), dotted keys
(``{"process.parent.executable": ...}``) or a mix of both, and any level may
hold an array of objects. A lookup here follows every shape and returns every
value found, so a matcher can apply "any element matches".

A missing field and a field holding JSON ``null`` are different results:
``MISSING`` for the first, ``[None]`` for the second.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

MISSING: tuple[()] = ()
"""The lookup result for a field that is not in the event."""


def lookup(event: Mapping[str, Any], path: str) -> list[Any] | tuple[()]:
    """Return every value at ``path`` (dotted) in ``event``, arrays flattened.

    Returns ``MISSING`` when no shape of the event has the field.
    """
    found: list[Any] = []
    _collect(event, path.split("."), 0, found)
    if not found:
        return MISSING
    return found


def _collect(node: Any, parts: list[str], start: int, found: list[Any]) -> None:
    if isinstance(node, list):
        for element in node:
            _collect(element, parts, start, found)
        return
    if not isinstance(node, Mapping):
        return

    # Try the longest dotted key first: {"process.parent.executable": x} is one
    # key, while {"process": {"parent.executable": x}} splits after "process".
    for end in range(len(parts), start, -1):
        key = parts[start] if end == start + 1 else ".".join(parts[start:end])
        if key not in node:
            continue
        value = node[key]
        if end == len(parts):
            _extend_flat(value, found)
        else:
            _collect(value, parts, end, found)


def _extend_flat(value: Any, found: list[Any]) -> None:
    if isinstance(value, list):
        for element in value:
            _extend_flat(element, found)
    else:
        found.append(value)


def iter_strings(node: Any) -> Iterator[str]:
    """Yield every string value anywhere in ``node``, keys excluded."""
    if isinstance(node, str):
        yield node
    elif isinstance(node, Mapping):
        for value in node.values():
            yield from iter_strings(value)
    elif isinstance(node, list):
        for element in node:
            yield from iter_strings(element)


def first_present(event: Mapping[str, Any], paths: tuple[str, ...]) -> list[Any] | tuple[()]:
    """Return the values of the first path in ``paths`` that the event has."""
    for path in paths:
        values = lookup(event, path)
        if values is not MISSING:
            return values
    return MISSING
