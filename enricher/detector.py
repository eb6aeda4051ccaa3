"""Run compiled Sigma rules over events."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from typing import Any

from enricher.rules.compiler import EventContext
from enricher.rules.fieldmap import FieldMapping
from enricher.rules.loader import CompiledRule, RuleSet
from enricher.rules.logsource import LogsourceGate, LogsourceTable


class Detector:
    """An immutable set of compiled rules; reloading builds a new Detector and swaps it in."""

    def __init__(self, rule_set: RuleSet, mapping: FieldMapping, logsources: LogsourceTable | None) -> None:
        self.rule_set = rule_set
        self.rules = tuple(rule_set.rules)
        self.mapping = mapping
        self.gating = logsources is not None
        # One gate object per log source, shared by its rules, so each is
        # checked once per event.
        self.gates: tuple[LogsourceGate | None, ...] = tuple(
            logsources.gate_for(rule.logsource) if logsources is not None else None for rule in self.rules
        )
        self.match_counts: Counter[str] = Counter()

    def ungated_rules(self) -> list[CompiledRule]:
        """Return the rules that run on every event because no log-source entry covers them."""
        if not self.gating:
            return []
        return [rule for rule, gate in zip(self.rules, self.gates) if gate is None]

    def match(self, event: Mapping[str, Any]) -> list[CompiledRule]:
        """Return the rules whose log source covers ``event`` and whose condition holds, in load order."""
        context = EventContext(event, self.mapping)
        gate_results: dict[str, bool] = {}
        matched = []
        for rule, gate in zip(self.rules, self.gates):
            if gate is not None:
                allowed = gate_results.get(gate.key)
                if allowed is None:
                    allowed = gate_results[gate.key] = gate.allows(event)
                if not allowed:
                    continue
            if rule.predicate(context):
                matched.append(rule)
        return matched
