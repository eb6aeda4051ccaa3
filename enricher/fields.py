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
    return lookup_parts(event, path, path.split("."))


def lookup_parts(event: Mapping[str, Any], path: str, parts: list[str]) -> list[Any] | tuple[()]:
    """``lookup`` with the path already split."""
    # Fast path for the common shapes: one dotted key at the top, or plain
    # nested objects all the way down. Anything else takes the full search.
    value = event.get(path, _ABSENT) if len(parts) > 1 else _ABSENT
    if value is _ABSENT:
        node: Any = event
        for part in parts:
            if type(node) is not dict:
                break
            node = node.get(part, _ABSENT)
            if node is _ABSENT:
                break
        else:
            value = node
    # NOTE: a value found this way wins over a twin of the same field under
    # another shape in the same event ({"process": {"pid": 1}, "process.pid":
    # 2}); shippers do not send such conflicts and checking for them would
    # cost a key scan per lookup.
    if value is not _ABSENT and type(value) is not dict:
        if type(value) is list:
            found: list[Any] = []
            _extend_flat(value, found)
            return found if found else MISSING
        return [value]

    found = []
    _collect(event, parts, 0, found)
    if not found:
        return MISSING
    return found


_ABSENT = object()


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


class EventFields:
    """One event with what field lookups learn about its shape, shared by all rules.

    Lookups walk the nested objects. When the walk misses, the full search
    over other shapes runs only if a dict on the walked path has a dotted key.
    Which dicts have one is learned once per event.
    """

    __slots__ = ("event", "_dotted", "_strings")

    def __init__(self, event: Mapping[str, Any]) -> None:
        self.event = event
        self._dotted: dict[int, bool] = {}
        self._strings: list[str] | None = None

    def lookup(self, path: str, parts: list[str]) -> list[Any] | tuple[()]:
        node: Any = self.event
        for part in parts:
            if type(node) is not dict:
                if type(node) is list:
                    return lookup(self.event, path)
                break
            node = node.get(part, _ABSENT)
            if node is _ABSENT:
                break
        else:
            # NOTE: a value found by the walk wins over a twin of the same
            # field under a dotted key in the same event, because shippers
            # do not send such conflicts.
            kind = type(node)
            if kind is list:
                found: list[Any] = []
                _extend_flat(node, found)
                return found if found else MISSING
            if kind is dict:
                return lookup(self.event, path)
            return [node]

        node = self.event
        for part in parts:
            if type(node) is not dict:
                break
            if self._has_dotted_key(node):
                return lookup(self.event, path)
            node = node.get(part, _ABSENT)
            if node is _ABSENT:
                break
        return MISSING

    def _has_dotted_key(self, node: dict[str, Any]) -> bool:
        known = self._dotted.get(id(node))
        if known is None:
            known = self._dotted[id(node)] = any("." in key for key in node)
        return known

    def strings(self) -> list[str]:
        """Return every string value of the event, keys excluded."""
        if self._strings is None:
            strings: list[str] = []
            stack: list[Any] = [self.event]
            while stack:
                node = stack.pop()
                values = node.values() if isinstance(node, Mapping) else node
                for value in values:
                    kind = type(value)
                    if kind is str:
                        strings.append(value)
                    elif kind is dict or kind is list or isinstance(value, Mapping):
                        stack.append(value)
            self._strings = strings
        return self._strings
