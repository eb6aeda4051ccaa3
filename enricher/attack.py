"""Sigma ``attack.*`` tags turned into ECS ``threat.*`` fields.

The ATT&CK Enterprise table (version 18.1, from MITRE's mitre/cti) ships as
package data, so nothing is fetched at run time.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Any

import orjson

logger = logging.getLogger(__name__)

_TECHNIQUE_TAG = re.compile(r"^attack\.(t\d{4}(?:\.\d{3})?)$", re.IGNORECASE)
_TACTIC_TAG = re.compile(r"^attack\.([a-z][a-z_-]+)$", re.IGNORECASE)


@dataclass(frozen=True)
class AttackTable:
    version: str
    tactics_by_id: dict[str, dict[str, Any]]
    tactic_ids_by_shortname: dict[str, str]
    techniques: dict[str, dict[str, Any]]

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> AttackTable:
        return cls(
            version=data["attack_version"],
            tactics_by_id=data["tactics"],
            tactic_ids_by_shortname={
                tactic["shortname"]: tactic_id for tactic_id, tactic in data["tactics"].items()
            },
            techniques=data["techniques"],
        )

    def resolve_technique(self, technique_id: str) -> str | None:
        """Follow ``revoked_by`` to the current technique id; None when unknown."""
        seen = set()
        current = technique_id
        while current in self.techniques and current not in seen:
            seen.add(current)
            entry = self.techniques[current]
            if not entry.get("revoked"):
                return current
            current = entry.get("revoked_by", "")
        return None


@lru_cache(maxsize=1)
def attack_table() -> AttackTable:
    raw = resources.files("enricher.data").joinpath("enterprise-attack.json").read_bytes()
    return AttackTable.from_json(orjson.loads(raw))


def threat_from_tags(tags: list[str], rule_id: str = "") -> dict[str, Any] | None:
    """Build the ECS ``threat`` object for a rule's tags, or None without ATT&CK tags.

    Techniques and tactics come from the tags. A rule that names techniques but
    no tactic gets the tactics the techniques belong to.
    """
    table = attack_table()
    technique_ids: list[str] = []
    tactic_ids: list[str] = []
    for tag in tags:
        technique = _TECHNIQUE_TAG.match(tag)
        if technique:
            technique_id = technique.group(1).upper()
            resolved = table.resolve_technique(technique_id)
            if resolved is None:
                # Tags newer than the shipped ATT&CK table stay in sigma.tags.
                logger.debug("rule %s: ATT&CK technique %s is not in ATT&CK %s", rule_id, technique_id, table.version)
                continue
            if resolved != technique_id:
                logger.debug("rule %s: ATT&CK technique %s is revoked, using %s", rule_id, technique_id, resolved)
            elif table.techniques[resolved].get("deprecated"):
                logger.debug("rule %s: ATT&CK technique %s is deprecated", rule_id, technique_id)
            _append_unique(technique_ids, resolved)
            continue
        tactic = _TACTIC_TAG.match(tag)
        if tactic:
            shortname = tactic.group(1).lower().replace("_", "-")
            tactic_id = table.tactic_ids_by_shortname.get(shortname)
            if tactic_id is not None:
                _append_unique(tactic_ids, tactic_id)

    if not technique_ids and not tactic_ids:
        return None
    if not tactic_ids:
        for technique_id in technique_ids:
            for shortname in table.techniques[technique_id]["tactics"]:
                _append_unique(tactic_ids, table.tactic_ids_by_shortname[shortname])

    threat: dict[str, Any] = {"framework": "MITRE ATT&CK"}
    if tactic_ids:
        threat["tactic"] = _reference_lists(tactic_ids, table.tactics_by_id)

    parents: list[str] = []
    subtechniques: list[str] = []
    for technique_id in technique_ids:
        parent = table.techniques[technique_id].get("parent")
        if parent:
            _append_unique(parents, parent)
            _append_unique(subtechniques, technique_id)
        else:
            _append_unique(parents, technique_id)
    if parents:
        threat["technique"] = _reference_lists(parents, table.techniques)
        if subtechniques:
            threat["technique"]["subtechnique"] = _reference_lists(subtechniques, table.techniques)
    return threat


def _reference_lists(ids: list[str], entries: dict[str, dict[str, Any]]) -> dict[str, list[str]]:
    return {
        "id": list(ids),
        "name": [entries[entry_id]["name"] for entry_id in ids],
        "reference": [entries[entry_id]["reference"] for entry_id in ids],
    }


def _append_unique(items: list[str], item: str) -> None:
    if item not in items:
        items.append(item)
