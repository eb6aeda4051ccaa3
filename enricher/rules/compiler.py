"""Compile parsed pySigma rules into Python predicates.

A predicate takes an ``EventContext`` and returns whether the rule's condition
holds. Each rule is compiled once at load; evaluation never touches pySigma
objects. Semantics follow the Sigma specification 2.x: case-insensitive
strings, ``*``/``?`` wildcards, value lists OR-linked (AND with ``all``), maps
AND-linked, lists of maps OR-linked, and a missing field makes every positive
test false, so ``not`` over it is true.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import orjson
from sigma.conditions import (
    ConditionAND,
    ConditionIdentifier,
    ConditionItem,
    ConditionNOT,
    ConditionOR,
    ConditionSelector,
)
from sigma.modifiers import SigmaBase64Modifier, SigmaBase64OffsetModifier, SigmaUTF16Modifier
from sigma.rule import SigmaDetection, SigmaDetectionItem, SigmaRule
from sigma.types import (
    Placeholder,
    SigmaBool,
    SigmaCasedString,
    SigmaCIDRExpression,
    SigmaCompareExpression,
    SigmaExists,
    SigmaExpansion,
    SigmaFieldReference,
    SigmaNull,
    SigmaNumber,
    SigmaQueryExpression,
    SigmaRegularExpression,
    SigmaString,
    SigmaTimestampPart,
    SpecialChars,
)

from enricher.fields import MISSING, EventFields
from enricher.rules import values as value_matchers
from enricher.rules.fieldmap import FieldMapping
from enricher.rules.values import UnsupportedValue, ValueMatcher, text_of

Predicate = Callable[["EventContext"], bool]


class EventContext:
    """One event with its resolved Sigma fields cached, shared by every rule that runs on it."""

    __slots__ = ("event", "fields", "_mapping", "_values", "_folded")

    def __init__(self, event: Mapping[str, Any], mapping: FieldMapping) -> None:
        self.event = event
        self.fields = EventFields(event)
        self._mapping = mapping
        self._values: dict[str, list[Any] | tuple[()]] = {}
        self._folded: dict[str | None, list[str]] = {}

    def values(self, sigma_field: str) -> list[Any] | tuple[()]:
        """Return the values of a Sigma field, or ``MISSING``."""
        cached = self._values.get(sigma_field)
        if cached is None:
            cached = self._mapping.resolver(sigma_field)(self.fields)
            self._values[sigma_field] = cached
        return cached

    def folded(self, sigma_field: str | None) -> list[str]:
        """Return the field's values as case-folded text.

        ``None`` stands for keyword search: one text, every string of the
        event case-folded and joined by newlines, so a literal is found with
        one substring test. Case-insensitive Sigma matching folds each value
        once per event here, not once per rule.
        """
        cached = self._folded.get(sigma_field)
        if cached is None:
            if sigma_field is None:
                cached = ["\n".join(self.fields.strings()).casefold()]
            else:
                cached = [text.casefold() for text in map(text_of, self.values(sigma_field)) if text is not None]
            self._folded[sigma_field] = cached
        return cached

    def folded_strings(self) -> list[str]:
        """Return every string of the event, each case-folded, for keyword patterns that span wildcards."""
        cached = self._folded.get(KEYWORD_STRINGS)
        if cached is None:
            cached = self._folded[KEYWORD_STRINGS] = [text.casefold() for text in self.fields.strings()]
        return cached

    def strings(self) -> list[str]:
        """Return every string value of the event, for keyword detections."""
        return self.fields.strings()

    def json_text(self) -> str:
        """Return the event as case-folded JSON text (orjson), for finding keyword candidates."""
        cached = self._folded.get(JSON_TEXT)
        if cached is None:
            cached = self._folded[JSON_TEXT] = [orjson.dumps(self.event).decode().casefold()]
        return cached[0]


KEYWORD_STRINGS = "\x00keyword strings"
"""Cache key of ``EventContext.folded_strings``; no Sigma field has this name."""

JSON_TEXT = "\x00json text"
"""Cache key of ``EventContext.json_text``; no Sigma field has this name."""


class RuleCompileError(ValueError):
    """A rule that parsed but cannot be evaluated exactly."""


Placeholders = Mapping[str, list[str]]


def compile_rule(rule: SigmaRule, placeholders: Placeholders | None = None) -> Predicate:
    """Compile the rule's condition (all conditions OR-linked) into one predicate.

    ``placeholders`` gives the values ``%name%`` expands to under the
    ``expand`` modifier; each placeholder becomes an OR over its values.
    """
    placeholders = placeholders or {}
    conditions = rule.detection.condition
    if not conditions:
        raise RuleCompileError("the rule has no condition")
    detections = rule.detection.detections
    compiled: dict[str, Predicate] = {}

    def detection_predicate(name: str) -> Predicate:
        if name not in compiled:
            if name not in detections:
                raise RuleCompileError(f"condition names detection {name!r}, which is not defined")
            compiled[name] = _compile_detection(detections[name], placeholders)
        return compiled[name]

    predicates = []
    for condition in rule.detection.parsed_condition:
        tree = condition.parse(postprocess=False)
        predicates.append(_compile_condition(tree, detection_predicate, list(detections)))
    return _any_of(predicates)


def _compile_condition(
    node: Any,
    detection_predicate: Callable[[str], Predicate],
    names: list[str],
) -> Predicate:
    if isinstance(node, ConditionIdentifier):
        return detection_predicate(node.identifier)
    if isinstance(node, ConditionSelector):
        selected = select_detections(node.pattern, names)
        if not selected:
            raise RuleCompileError(f"'{node.args[0]} of {node.pattern}' matches no detection")
        parts = [detection_predicate(name) for name in selected]
        return _all_of(parts) if node.cond_class is ConditionAND else _any_of(parts)
    if isinstance(node, ConditionNOT):
        inner = _compile_condition(node.args[0], detection_predicate, names)
        return lambda context: not inner(context)
    if isinstance(node, (ConditionAND, ConditionOR)):
        parts = [_compile_condition(arg, detection_predicate, names) for arg in node.args]
        return _all_of(parts) if isinstance(node, ConditionAND) else _any_of(parts)
    if isinstance(node, ConditionItem):
        raise RuleCompileError(f"unsupported condition element {type(node).__name__}")
    raise RuleCompileError(f"unsupported condition element {node!r}")


def select_detections(pattern: str, names: list[str]) -> list[str]:
    # As in pySigma 1.x: "them" and patterns not starting with "_" skip
    # detections whose name starts with "_".
    if pattern == "them":
        return [name for name in names if not name.startswith("_")]
    prefix_only = pattern.endswith("*") and "*" not in pattern[:-1]
    selected = []
    for name in names:
        if name.startswith("_") and not pattern.startswith("_"):
            continue
        if prefix_only and name.startswith(pattern[:-1]):
            selected.append(name)
        elif not prefix_only and _wildcard_fullmatch(pattern, name):
            selected.append(name)
    return selected


def _wildcard_fullmatch(pattern: str, name: str) -> bool:
    # Selector patterns contain only letters, digits, "_" and "*".
    return fnmatch.fnmatchcase(name, pattern)


def _compile_detection(detection: SigmaDetection, placeholders: Placeholders) -> Predicate:
    parts = []
    for item in detection.detection_items:
        if isinstance(item, SigmaDetection):
            parts.append(_compile_detection(item, placeholders))
        else:
            parts.append(_compile_item(item, placeholders))
    return _all_of(parts) if detection.item_linking is ConditionAND else _any_of(parts)


def _compile_item(item: SigmaDetectionItem, placeholders: Placeholders) -> Predicate:
    _check_modifiers(item)
    if item.field is None:
        predicate = _compile_keywords(item, placeholders)
    else:
        predicate = _compile_field_item(item, placeholders)
    if item.negated:
        # pySigma 1.x parses "neq" as a negated item, so a missing field
        # satisfies it, as "not" over a missing field does.
        inner = predicate
        return lambda context: not inner(context)
    return predicate


def _check_modifiers(item: SigmaDetectionItem) -> None:
    modifiers = list(item.modifiers)
    if SigmaUTF16Modifier in modifiers:
        after = modifiers[modifiers.index(SigmaUTF16Modifier) + 1 :]
        if SigmaBase64Modifier in after or SigmaBase64OffsetModifier in after:
            # pySigma 1.x writes the byte order mark as a character that its
            # base64 modifier then encodes as UTF-8 (EF BB BF), not as the
            # UTF-16 bytes FF FE the specification means.
            raise RuleCompileError(
                f"field {item.field!r}: utf16 followed by base64 is encoded wrongly by pySigma 1.x; "
                "use wide (UTF-16LE without byte order mark) instead"
            )


def _compile_keywords(item: SigmaDetectionItem, placeholders: Placeholders) -> Predicate:
    # A keyword is searched in every string value of the event. A plain value
    # without wildcards matches as a substring, as pySigma's Lucene backend
    # converts unbound values to *value*.
    values = []
    for value in _flatten(expand_placeholders(item.value, placeholders, None)):
        if isinstance(value, SigmaString):
            if not value.startswith(SpecialChars.WILDCARD_MULTI):
                value = SpecialChars.WILDCARD_MULTI + value
            if not value.endswith(SpecialChars.WILDCARD_MULTI):
                value = value + SpecialChars.WILDCARD_MULTI
        values.append(value)
    if item.value_linking is ConditionAND:
        matchers = [_any_value_matcher([value], None) for value in values]
    else:
        matchers = [_any_value_matcher(values, None)]

    def match(context: EventContext) -> bool:
        strings = context.strings()
        for matcher in matchers:
            if not matcher(strings, context):
                return False
        return True

    return match


def _compile_field_item(item: SigmaDetectionItem, placeholders: Placeholders) -> Predicate:
    field = item.field
    if not item.value:
        # pySigma turns an empty value list into a null check.
        return _null_predicate(field)

    groups: list[list[Any]] = []
    for value in expand_placeholders(item.value, placeholders, field):
        group = value.values if isinstance(value, SigmaExpansion) else [value]
        groups.append(list(_flatten(group)))

    special = [value for group in groups for value in group if isinstance(value, (SigmaNull, SigmaExists))]
    if special:
        if len(groups) != 1 or len(groups[0]) != 1:
            raise RuleCompileError(f"field {field!r}: null and exists cannot be combined with other values")
        value = special[0]
        if isinstance(value, SigmaNull):
            return _null_predicate(field)
        return _exists_predicate(field, bool(value))

    # Values an expansion produced (windash, base64offset) are OR-linked even
    # under "all", as pySigma's SigmaExpansion defines.
    link_all = item.value_linking is ConditionAND
    if not link_all:
        groups = [[value for group in groups for value in group]]
    group_matchers = [_any_value_matcher(group, field) for group in groups]

    if len(group_matchers) == 1:
        only = group_matchers[0]

        def match_one(context: EventContext) -> bool:
            found = context.values(field)
            if found is MISSING:
                return False
            return only(found, context)

        return match_one

    def match(context: EventContext) -> bool:
        found = context.values(field)
        if found is MISSING:
            return False
        if link_all:
            return all(matcher(found, context) for matcher in group_matchers)
        return any(matcher(found, context) for matcher in group_matchers)

    return match


ContextMatcher = Callable[[list[Any], EventContext], bool]


def _any_value_matcher(values: list[Any], field: str | None) -> ContextMatcher:
    """Compile OR-linked values into one matcher.

    Case-insensitive strings of the common shapes share one test per shape:
    a set for equality and tuples for str.startswith and str.endswith, which
    run in C, so a list of hundreds of image names costs one call per value.
    """
    equals: set[str] = set()
    prefixes: list[str] = []
    suffixes: list[str] = []
    needles: list[str] = []
    others: list[ContextMatcher] = []
    for value in values:
        shape = value_matchers.string_shape(value) if isinstance(value, SigmaString) else None
        if shape is None:
            others.append(_value_matcher(value, field))
            continue
        kind, literal = shape
        if field is None and (kind != "contains" or "\n" in literal):
            # Keywords test substrings of the joined event text; other
            # shapes need the strings one by one.
            others.append(_value_matcher(value, field))
        elif kind == "equals":
            equals.add(literal)
        elif kind == "prefix":
            prefixes.append(literal)
        elif kind == "suffix":
            suffixes.append(literal)
        else:
            needles.append(literal)

    prefix_tuple = tuple(prefixes)
    suffix_tuple = tuple(suffixes)
    shaped = bool(equals or prefix_tuple or suffix_tuple or needles)

    def match(found: list[Any], context: EventContext) -> bool:
        if shaped:
            for text in context.folded(field):
                if text in equals:
                    return True
                if prefix_tuple and text.startswith(prefix_tuple):
                    return True
                if suffix_tuple and text.endswith(suffix_tuple):
                    return True
                for needle in needles:
                    if needle in text:
                        return True
        for matcher in others:
            if matcher(found, context):
                return True
        return False

    if not shaped and len(others) == 1:
        return others[0]
    return match


def expand_placeholders(values: list[Any], placeholders: Placeholders, field: str | None) -> list[Any]:
    """Replace each string with placeholders by an expansion over the configured values."""
    expanded: list[Any] = []
    for value in values:
        if isinstance(value, SigmaExpansion):
            expanded.append(SigmaExpansion(expand_placeholders(value.values, placeholders, field)))
            continue
        if isinstance(value, SigmaRegularExpression) and value.regexp.contains_placeholder():
            raise RuleCompileError(f"field {field!r}: placeholders inside regular expressions are not supported")
        if not isinstance(value, SigmaString) or not value.contains_placeholder():
            expanded.append(value)
            continue
        for part in value.s:
            if isinstance(part, Placeholder) and not placeholders.get(part.name):
                raise RuleCompileError(
                    f"field {field!r}: placeholder %{part.name}% has no value; "
                    "define it in a placeholders file (--placeholders)"
                )

        def values_of(placeholder: Placeholder) -> Iterator[str]:
            yield from placeholders[placeholder.name]

        expanded.append(SigmaExpansion(list(value.replace_placeholders(values_of))))
    return expanded


def _flatten(values: list[Any]) -> list[Any]:
    flat = []
    for value in values:
        if isinstance(value, SigmaExpansion):
            flat.extend(_flatten(value.values))
        else:
            flat.append(value)
    return flat


def _value_matcher(value: Any, field: str | None) -> ContextMatcher:
    """Compile one value into a test of (field values, event context).

    ``field`` None is a keyword value, tested against every string of the event.
    """
    if isinstance(value, SigmaFieldReference):
        return _field_reference_matcher(value)
    if isinstance(value, SigmaString):
        return _string_matcher(value, field)
    matcher = _plain_value_matcher(value, field)
    return lambda found, context: matcher(found)


def _string_matcher(value: SigmaString, field: str | None) -> ContextMatcher:
    try:
        test = value_matchers.string_test(value)
    except UnsupportedValue as error:
        raise RuleCompileError(f"field {field!r}: {error}") from error
    if isinstance(value, SigmaCasedString):

        def match_cased(found: list[Any], context: EventContext) -> bool:
            for item in found:
                text = text_of(item)
                if text is not None and test(text):
                    return True
            return False

        return match_cased

    def match_folded(found: list[Any], context: EventContext) -> bool:
        texts = context.folded(field) if field is not None else context.folded_strings()
        for text in texts:
            if test(text):
                return True
        return False

    return match_folded


def _plain_value_matcher(value: Any, field: str | None) -> ValueMatcher:
    try:
        if isinstance(value, SigmaTimestampPart):
            return value_matchers.timestamp_part_matcher(value)
        if isinstance(value, SigmaBool):
            return value_matchers.bool_matcher(value)
        if isinstance(value, SigmaNumber):
            return value_matchers.number_matcher(value)
        if isinstance(value, SigmaRegularExpression):
            return value_matchers.regex_matcher(value)
        if isinstance(value, SigmaCIDRExpression):
            return value_matchers.cidr_matcher(value)
        if isinstance(value, SigmaCompareExpression):
            return value_matchers.compare_matcher(value)
    except UnsupportedValue as error:
        raise RuleCompileError(f"field {field!r}: {error}") from error
    if isinstance(value, SigmaQueryExpression):
        raise RuleCompileError(f"field {field!r}: query expressions are backend-specific")
    raise RuleCompileError(f"field {field!r}: unsupported value type {type(value).__name__}")


def _field_reference_matcher(reference: SigmaFieldReference) -> ContextMatcher:
    other = reference.field
    starts, ends = reference.starts_with, reference.ends_with

    def compare(text: str, target: str) -> bool:
        if starts and ends:
            return target in text
        if starts:
            return text.startswith(target)
        if ends:
            return text.endswith(target)
        return text == target

    def match(found: list[Any], context: EventContext) -> bool:
        targets = context.values(other)
        if targets is MISSING:
            return False
        target_texts = [text.casefold() for text in map(text_of, targets) if text is not None]
        for item in found:
            text = text_of(item)
            if text is None:
                continue
            folded = text.casefold()
            if any(compare(folded, target) for target in target_texts):
                return True
        return False

    return match


def _null_predicate(field: str) -> Predicate:
    def match(context: EventContext) -> bool:
        found = context.values(field)
        return found is MISSING or all(item is None for item in found)

    return match


def _exists_predicate(field: str, expected: bool) -> Predicate:
    def match(context: EventContext) -> bool:
        found = context.values(field)
        present = found is not MISSING and any(item is not None for item in found)
        return present is expected

    return match


def _all_of(parts: list[Predicate]) -> Predicate:
    if len(parts) == 1:
        return parts[0]
    if len(parts) == 2:
        first, second = parts
        return lambda context: first(context) and second(context)
    return lambda context: all(part(context) for part in parts)


def _any_of(parts: list[Predicate]) -> Predicate:
    if len(parts) == 1:
        return parts[0]
    if len(parts) == 2:
        first, second = parts
        return lambda context: first(context) or second(context)
    return lambda context: any(part(context) for part in parts)
