"""Run compiled Sigma rules over events."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from enricher.rules.compiler import EventContext
from enricher.rules.fieldmap import FieldMapping
from enricher.rules.loader import CompiledRule, RuleSet


@dataclass(frozen=True)
class Match:
    rule: CompiledRule
    event: Mapping[str, Any]


class Detector:
    """An immutable set of compiled rules; swap the whole object to reload rules."""

    def __init__(self, rule_set: RuleSet, mapping: FieldMapping) -> None:
        self.rule_set = rule_set
        self.rules = tuple(rule_set.rules)
        self.mapping = mapping

    def match(self, event: Mapping[str, Any]) -> list[CompiledRule]:
        """Return the rules whose condition holds for ``event``, in load order."""
        context = EventContext(event, self.mapping)
        return [rule for rule in self.rules if rule.predicate(context)]
