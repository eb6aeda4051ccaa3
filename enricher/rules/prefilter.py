"""Required literals of a rule, for picking candidate rules per event.

For each rule this module derives a conjunction of groups. A group is a set of
(Sigma field, case-folded literal) alternatives, and the guarantee is: when
the rule matches an event, every group has at least one literal that occurs
in the case-folded value of its field. A rule without such a guarantee (a pure
negation, a keyword search, a null or exists test, a regular expression
without a required literal) gets an empty conjunction and runs on every event.

The derivation mirrors the compiler's semantics: AND keeps the groups of all
its branches (up to ``MAX_GROUPS``, the most selective first); OR needs every
branch to have a group and unites the most selective group of each; NOT
guarantees nothing.
"""

from __future__ import annotations

import re
from typing import Any

# The standard library's own regular expression parser; its parse tree shows
# which literals a pattern requires. Python 3.11 names it re._parser.
from re import _constants, _parser as _regex_parser  # noqa: PLC2701

from sigma.conditions import ConditionAND, ConditionIdentifier, ConditionNOT, ConditionOR, ConditionSelector
from sigma.rule import SigmaDetection, SigmaDetectionItem, SigmaRule
from sigma.types import SigmaCasedString, SigmaExpansion, SigmaRegularExpression, SigmaString

from enricher.rules.compiler import Placeholders, expand_placeholders, select_detections

Group = frozenset[tuple[str, str]]
Need = tuple[Group, ...]

MAX_GROUPS = 4

_POSSESSIVE_REPEAT = getattr(_constants, "POSSESSIVE_REPEAT", None)


def required_literals(rule: SigmaRule, placeholders: Placeholders | None = None) -> Need:
    """Return the groups of literals every matching event has one of each; empty for none."""
    detections = rule.detection.detections
    names = list(detections)
    needs = []
    for condition in rule.detection.parsed_condition:
        tree = condition.parse(postprocess=False)
        needs.append(_condition_need(tree, detections, names, placeholders or {}))
    # Several conditions are OR-linked.
    return needs[0] if len(needs) == 1 else _union(needs)


def _condition_need(node: Any, detections: dict[str, SigmaDetection], names: list[str], placeholders: Placeholders) -> Need:
    if isinstance(node, ConditionIdentifier):
        return _detection_need(detections[node.identifier], placeholders)
    if isinstance(node, ConditionSelector):
        parts = [_detection_need(detections[name], placeholders) for name in select_detections(node.pattern, names)]
        return _conjunction(parts) if node.cond_class is ConditionAND else _union(parts)
    if isinstance(node, ConditionNOT):
        return ()
    if isinstance(node, (ConditionAND, ConditionOR)):
        parts = [_condition_need(arg, detections, names, placeholders) for arg in node.args]
        return _conjunction(parts) if isinstance(node, ConditionAND) else _union(parts)
    return ()


def _detection_need(detection: SigmaDetection, placeholders: Placeholders) -> Need:
    parts = []
    for item in detection.detection_items:
        if isinstance(item, SigmaDetection):
            parts.append(_detection_need(item, placeholders))
        else:
            parts.append(_item_need(item, placeholders))
    return _conjunction(parts) if detection.item_linking is ConditionAND else _union(parts)


def _item_need(item: SigmaDetectionItem, placeholders: Placeholders) -> Need:
    if item.negated or not item.value:
        return ()
    groups: list[Need] = []
    for value in expand_placeholders(item.value, placeholders, item.field):
        members = value.values if isinstance(value, SigmaExpansion) else [value]
        alternatives = [_value_literals(member) for member in members]
        if any(literals is None for literals in alternatives):
            groups.append(())
        else:
            groups.append((frozenset((item.field, literal) for literals in alternatives for literal in literals),))
    if item.value_linking is ConditionAND:
        return _conjunction(groups)
    return _union(groups)


def _value_literals(value: Any) -> list[str] | None:
    """Return literals one of which every value matching ``value`` contains, case-folded."""
    if isinstance(value, SigmaRegularExpression):
        return regex_literals(str(value.regexp))
    literal = _longest_literal(value)
    return None if literal is None else [literal]


def _longest_literal(value: Any) -> str | None:
    if isinstance(value, SigmaExpansion):
        return None
    if not isinstance(value, (SigmaString, SigmaCasedString)):
        return None
    literals = [part for part in value.s if isinstance(part, str)]
    if not literals:
        return None
    longest = max(literals, key=len)
    return longest.casefold() if longest else None


def regex_literals(pattern: str) -> list[str] | None:
    """Return literals one of which every text the pattern finds contains, or None.

    The pattern is read with Python's regular expression parser: literal runs
    in a required sequence are necessary, a group or a repeat with a minimum
    of one passes its need up, and an alternation needs every branch to have
    literals. Patterns the parser cannot read give None.
    """
    try:
        parsed = _regex_parser.parse(pattern)
    except (re.error, OverflowError, RecursionError, ValueError):
        return None
    need = _sequence_literals(list(parsed))
    if need is None:
        return None
    return sorted(literal.casefold() for literal in need)


def _sequence_literals(items: list[tuple[Any, Any]]) -> set[str] | None:
    options: list[set[str]] = []
    run: list[str] = []
    for op, argument in items:
        if op is _constants.LITERAL:
            run.append(chr(argument))
            continue
        if run:
            options.append({"".join(run)})
            run = []
        inner: set[str] | None = None
        if op is _constants.SUBPATTERN:
            inner = _sequence_literals(list(argument[-1]))
        elif op in (_constants.MAX_REPEAT, _constants.MIN_REPEAT, _POSSESSIVE_REPEAT) and argument[0] >= 1:
            inner = _sequence_literals(list(argument[2]))
        elif op is _constants.BRANCH:
            branches = [_sequence_literals(list(branch)) for branch in argument[1]]
            if branches and all(branch for branch in branches):
                inner = set().union(*branches)
        if inner:
            options.append(inner)
    if run:
        options.append({"".join(run)})
    if not options:
        return None
    return max(options, key=lambda option: (min(len(literal) for literal in option), -len(option)))


def _union(needs: list[Need]) -> Need:
    if not needs or any(not need for need in needs):
        return ()
    return (frozenset().union(*(_best_group(need) for need in needs)),)


def _conjunction(needs: list[Need]) -> Need:
    groups = sorted({group for need in needs for group in need}, key=_selectivity, reverse=True)
    return tuple(groups[:MAX_GROUPS])


def _best_group(need: Need) -> Group:
    return max(need, key=_selectivity)


def _selectivity(group: Group) -> tuple[int, int]:
    # Longer literals occur in fewer events; fewer alternatives hit less often.
    return (min(len(literal) for _field, literal in group), -len(group))
