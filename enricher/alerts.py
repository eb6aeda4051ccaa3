"""Build one ECS alert document per (event, rule) match, with a deterministic id."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any

import orjson

from enricher.fields import MISSING, EventFields, lookup
from enricher.rules.fieldmap import FieldMapping
from enricher.rules.loader import CompiledRule

ECS_VERSION = "8.17.0"

# ECS fields copied from the event for dashboards and filters. When an event
# comes without them (raw Winlogbeat or flat Sysmon names), they are filled
# from the Sigma fields of the same meaning through the field mapping.
_ECS_FROM_SIGMA = (
    ("process.executable", "Image"),
    ("process.command_line", "CommandLine"),
    ("process.pid", "ProcessId"),
    ("process.entity_id", "ProcessGuid"),
    ("process.working_directory", "CurrentDirectory"),
    ("process.pe.original_file_name", "OriginalFileName"),
    ("process.parent.executable", "ParentImage"),
    ("process.parent.command_line", "ParentCommandLine"),
    ("process.parent.pid", "ParentProcessId"),
    ("process.parent.entity_id", "ParentProcessGuid"),
    ("host.name", "Computer"),
)
_COPIED_OBJECTS = ("host", "user", "process")


def event_identity(event: Mapping[str, Any]) -> bytes:
    """Return the bytes that identify an event across replays.

    The event's own ``event.id`` wins. Otherwise a Windows event is identified
    by its computer, channel and record id, which are the same in the ECS, raw
    Winlogbeat and flat Sysmon forms. Otherwise the canonical JSON of the whole
    event (sorted keys) is used.
    """
    event_id = _first_text(event, ("event.id",))
    if event_id is not None:
        return b"event.id\x00" + event_id.encode()
    record_id = _first_text(event, ("winlog.record_id", "EventRecordID"))
    if record_id is not None:
        computer = _first_text(event, ("winlog.computer_name", "Computer", "host.name")) or ""
        channel = _first_text(event, ("winlog.channel", "Channel")) or ""
        return "\x00".join(("record", computer.casefold(), channel.casefold(), record_id)).encode()
    return b"json\x00" + orjson.dumps(event, option=orjson.OPT_SORT_KEYS)


def alert_id(rule_id: str, event: Mapping[str, Any]) -> str:
    digest = hashlib.blake2b(digest_size=20)
    digest.update(rule_id.encode())
    digest.update(b"\x00")
    digest.update(event_identity(event))
    return digest.hexdigest()


def _first_text(event: Mapping[str, Any], paths: tuple[str, ...]) -> str | None:
    for path in paths:
        values = lookup(event, path)
        for value in values:
            if isinstance(value, (str, int)) and not isinstance(value, bool) and str(value) != "":
                return str(value)
    return None


def event_timestamp(event: Mapping[str, Any]) -> str | None:
    """Return when the event happened: ``@timestamp``, else the Windows record's own time.

    Flat Sysmon and Security records carry ``TimeCreated`` (ISO 8601) or
    Sysmon's ``UtcTime`` ("2021-03-14 01:40:13.412", UTC).
    """
    timestamp = _first_text(event, ("@timestamp", "TimeCreated", "winlog.time_created", "event.created"))
    if timestamp is not None:
        return timestamp
    utc_time = _first_text(event, ("UtcTime", "winlog.event_data.UtcTime"))
    if utc_time is not None and len(utc_time) >= 19:
        return utc_time.replace(" ", "T", 1) + "Z"
    return None


class AlertBuilder:
    """Builder of alert documents from matches, without per-event state."""

    def __init__(self, mapping: FieldMapping) -> None:
        self.mapping = mapping

    def build(self, event: Mapping[str, Any], rule: CompiledRule, now: datetime | None = None) -> dict[str, Any]:
        now = now or datetime.now(timezone.utc)
        document_id = alert_id(rule.id, event)
        created = now.isoformat().replace("+00:00", "Z")
        timestamp = event_timestamp(event) or created

        alert: dict[str, Any] = {
            "@timestamp": timestamp,
            "ecs": {"version": ECS_VERSION},
            "event": {
                "kind": "alert",
                "id": document_id,
                "created": created,
                "category": ["process"] if rule.logsource.get("category", "").startswith("process") else [],
                "type": ["info"],
                "severity": _SEVERITY.get(rule.level or "", 0),
                "original": orjson.dumps(event).decode(),
            },
            "rule": dict(rule.alert_rule),
            "sigma": dict(rule.alert_sigma),
            "tags": ["sigma", *rule.tags],
        }
        if rule.threat:
            alert["threat"] = rule.threat
        for name in _COPIED_OBJECTS:
            value = event.get(name)
            if isinstance(value, Mapping):
                # A copy, because missing ECS fields are filled in below; an
                # orjson round trip copies JSON data several times faster
                # than copy.deepcopy.
                alert[name] = orjson.loads(orjson.dumps(value))
        self._fill_ecs(alert, event)
        return alert

    def _fill_ecs(self, alert: dict[str, Any], event: Mapping[str, Any]) -> None:
        fields = EventFields(event)
        for ecs_path, sigma_field in _ECS_FROM_SIGMA:
            if lookup(alert, ecs_path) is not MISSING:
                continue
            values = self.mapping.resolver(sigma_field)(fields)
            value = next((item for item in values if item is not None and not isinstance(item, (dict, list))), None)
            if value is None:
                continue
            if ecs_path.endswith(".pid"):
                value = _pid(value)
                if value is None:
                    continue
            _set_path(alert, ecs_path, value)
        user = self.mapping.resolver("User")(fields)
        if "user" not in alert and user is not MISSING:
            text = next((item for item in user if isinstance(item, str)), None)
            if text:
                domain, _, name = text.rpartition("\\")
                alert["user"] = {"name": name, **({"domain": domain} if domain else {})}


_SEVERITY = {"informational": 21, "low": 21, "medium": 47, "high": 73, "critical": 99}


def _pid(value: Any) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str):
        try:
            return int(value, 16) if value.lower().startswith("0x") else int(value)
        except ValueError:
            return None
    return None


def _set_path(document: dict[str, Any], path: str, value: Any) -> None:
    parts = path.split(".")
    node = document
    for part in parts[:-1]:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            return
        node = child
    node[parts[-1]] = value
