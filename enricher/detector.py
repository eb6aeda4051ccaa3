"""Run compiled Sigma rules over events, trying only the rules an event can match.

Each rule carries groups of literals, and every matching event contains a
literal of each group (see ``enricher.rules.prefilter``). The detector indexes
the literals per Sigma field in an Aho-Corasick automaton. Per event it folds
each indexed field once and scans it once. Then it runs only the rules whose
groups were all hit, plus the few rules without literals. The cost per event grows with the fields it has and the
literals found, not with the number of rules loaded. ``indexed=False`` runs
every rule on every event; tests compare both modes.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from typing import Any

import ahocorasick
import orjson

from enricher.rules.compiler import EventContext
from enricher.rules.values import text_of
from enricher.rules.fieldmap import FieldMapping
from enricher.rules.loader import CompiledRule, RuleSet
from enricher.rules.logsource import LogsourceGate, LogsourceTable


class Detector:
    """An immutable set of compiled rules; reloading builds a new Detector and swaps it in."""

    def __init__(
        self,
        rule_set: RuleSet,
        mapping: FieldMapping,
        logsources: LogsourceTable | None,
        indexed: bool = True,
    ) -> None:
        self.rule_set = rule_set
        self.rules = tuple(rule_set.rules)
        self.mapping = mapping
        self.gating = logsources is not None
        self.indexed = indexed
        # One gate object per log source, shared by its rules, so each is
        # checked once per event.
        self.gates: tuple[LogsourceGate | None, ...] = tuple(
            logsources.gate_for(rule.logsource) if logsources is not None else None for rule in self.rules
        )
        self.match_counts: Counter[str] = Counter()
        self._always = tuple(
            position for position, rule in enumerate(self.rules) if not indexed or not rule.required_literals
        )
        self._group_rule: list[int] = []
        self._rule_groups: dict[int, tuple[int, ...]] = {}
        self._automata = self._build_automata() if indexed else ()
        self._hit_cache: dict[str | None, dict[str, tuple[int, ...]]] = {field: {} for field, _ in self._automata}

    def clear_caches(self) -> None:
        """Forget the literal hits remembered per field value."""
        for cache in self._hit_cache.values():
            cache.clear()

    @staticmethod
    def _scan(automaton: ahocorasick.Automaton, text: str, cache: dict[str, tuple[int, ...]]) -> tuple[int, ...]:
        # Field values repeat across events (the same images, parents and
        # command lines), so the groups a value hits are remembered. The
        # cache is emptied when full rather than tracked per entry.
        groups = {group for _end, ids in automaton.iter(text.casefold()) for group in ids}
        if len(cache) >= HIT_CACHE_SIZE:
            cache.clear()
        found = cache[text] = tuple(groups)
        return found

    def _build_automata(self) -> tuple[tuple[str | None, ahocorasick.Automaton], ...]:
        literals_by_field: dict[str | None, dict[str, set[int]]] = {}
        selected = _select_groups(self.rules)
        for position, rule_groups in enumerate(selected):
            groups = []
            for group in rule_groups:
                group_id = len(self._group_rule)
                self._group_rule.append(position)
                groups.append(group_id)
                for field, literal in group:
                    if field is None:
                        literal = orjson.dumps(literal).decode()[1:-1]
                    literals_by_field.setdefault(field, {}).setdefault(literal, set()).add(group_id)
            self._rule_groups[position] = tuple(groups)

        automata = []
        for field, literals in sorted(literals_by_field.items(), key=lambda item: item[0] or ""):
            automaton = ahocorasick.Automaton()
            for literal, group_ids in literals.items():
                automaton.add_word(literal, tuple(sorted(group_ids)))
            automaton.make_automaton()
            automata.append((field, automaton))
        return tuple(automata)

    def ungated_rules(self) -> list[CompiledRule]:
        """Return the rules that run on every event because no log-source entry covers them."""
        if not self.gating:
            return []
        return [rule for rule, gate in zip(self.rules, self.gates) if gate is None]

    def candidates(self, context: EventContext) -> list[int]:
        """Return the positions of the rules that may match, in load order."""
        if not self.indexed:
            return list(self._always)
        hit: set[int] = set()
        for field, automaton in self._automata:
            if field is None:
                # Keyword literals are searched in the event's JSON text, with
                # the literals JSON-escaped at build time: a string value that
                # contains a literal contains it escaped in the JSON text too.
                # Key names can only add candidates, never hide one.
                for _end, groups in automaton.iter(context.json_text()):
                    hit.update(groups)
                continue
            cache = self._hit_cache[field]
            for value in context.values(field):
                text = value if type(value) is str else text_of(value)
                if text is None:
                    continue
                groups = cache.get(text)
                if groups is None:
                    groups = self._scan(automaton, text, cache)
                if groups:
                    hit.update(groups)
        if not hit:
            return list(self._always)
        found = set(self._always)
        group_rule = self._group_rule
        rule_groups = self._rule_groups
        for group in hit:
            position = group_rule[group]
            if position in found:
                continue
            for needed in rule_groups[position]:
                if needed not in hit:
                    break
            else:
                found.add(position)
        return sorted(found)

    def match_batch(self, events: list[Mapping[str, Any]]) -> list[list[CompiledRule]]:
        """Match every event of a batch."""
        match = self.match
        return [match(event) for event in events]

    def match(self, event: Mapping[str, Any]) -> list[CompiledRule]:
        """Return the rules whose log source covers ``event`` and whose condition holds, in load order."""
        context = EventContext(event, self.mapping)
        rules = self.rules
        gates = self.gates
        gate_results: dict[str, bool] = {}
        matched = []
        for position in self.candidates(context):
            gate = gates[position]
            if gate is not None:
                allowed = gate_results.get(gate.key)
                if allowed is None:
                    allowed = gate_results[gate.key] = gate.allows(context.fields)
                if not allowed:
                    continue
            rule = rules[position]
            if rule.predicate(context):
                matched.append(rule)
        return matched


HIT_CACHE_SIZE = 65_536
"""Field values whose literal hits are remembered, per indexed field."""

MIN_RULES_PER_FIELD = 10
"""A field indexed for fewer rules costs a lookup per event for little selection."""

SELECTIVE_LITERAL_LENGTH = 4
"""Literals this long on a commonly indexed field let a rule skip its rarely indexed fields."""

MIN_ASCII_LITERAL_LENGTH = 2
"""Shorter ASCII literals (a lone backslash) hit many times per value.

Single non-ASCII characters (emoji, homoglyphs) are rare in command lines."""

def _has_common_literal(group: frozenset[tuple[str, str]]) -> bool:
    return any(len(literal) < MIN_ASCII_LITERAL_LENGTH and literal.isascii() for _field, literal in group)


def _select_groups(rules: tuple[CompiledRule, ...]) -> list[tuple[frozenset[tuple[str, str]], ...]]:
    """Choose the literal groups to index per rule.

    Any one group of a rule is enough for correctness, and every indexed
    field costs a lookup per event. A group with a one-character ASCII
    literal hits many times per value, so it is dropped when the rule has
    other groups. A group on a field few rules use is dropped when the rule
    has a selective group on a commonly used field.
    """
    usable = []
    for rule in rules:
        groups = rule.required_literals
        usable.append(tuple(group for group in groups if not _has_common_literal(group)) or groups)

    rules_per_field: Counter[str] = Counter()
    for groups in usable:
        rules_per_field.update({field for group in groups for field, _literal in group})
    common = {field for field, count in rules_per_field.items() if count >= MIN_RULES_PER_FIELD}

    selected = []
    for groups in usable:
        on_common = tuple(group for group in groups if all(field in common for field, _literal in group))
        selective = any(min(len(literal) for _field, literal in group) >= SELECTIVE_LITERAL_LENGTH for group in on_common)
        selected.append(on_common if selective else groups)
    return selected
