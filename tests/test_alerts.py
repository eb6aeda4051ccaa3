"""Alert documents: ECS fields, ATT&CK threat fields and deterministic ids."""

from __future__ import annotations

import orjson

from enricher.alerts import AlertBuilder, alert_id, event_identity
from enricher.attack import threat_from_tags
from enricher.detector import Detector
from enricher.rules.fieldmap import FieldMapping
from enricher.rules.loader import load_rules
from enricher.rules.logsource import LogsourceTable

EVENT = {
    "@timestamp": "2021-03-14T01:40:13.412Z",
    "host": {"name": "MXS01"},
    "user": {"name": "SYSTEM", "domain": "NT AUTHORITY"},
    "process": {
        "executable": "C:\\Windows\\System32\\cmd.exe",
        "parent": {"executable": "C:\\Program Files\\Microsoft\\Exchange Server\\V15\\Bin\\EdgeTransport.exe"},
    },
    "event": {"category": ["process"], "type": ["start"], "code": "4688"},
    "winlog": {"computer_name": "MXS01", "channel": "Security", "event_id": "4688", "record_id": "1234"},
}


def build(event: dict) -> dict:
    mapping = FieldMapping.default()
    detector = Detector(load_rules(), mapping, LogsourceTable.load())
    (rule,) = detector.match(event)
    return AlertBuilder(mapping).build(event, rule)


def test_threat_from_default_rule_tags() -> None:
    threat = threat_from_tags(["attack.privilege-escalation", "attack.persistence", "attack.t1546.003"])
    assert threat["framework"] == "MITRE ATT&CK"
    assert threat["tactic"]["id"] == ["TA0004", "TA0003"]
    assert threat["tactic"]["name"] == ["Privilege Escalation", "Persistence"]
    assert threat["tactic"]["reference"][1] == "https://attack.mitre.org/tactics/TA0003/"
    assert threat["technique"] == {
        "id": ["T1546"],
        "name": ["Event Triggered Execution"],
        "reference": ["https://attack.mitre.org/techniques/T1546/"],
        "subtechnique": {
            "id": ["T1546.003"],
            "name": ["Windows Management Instrumentation Event Subscription"],
            "reference": ["https://attack.mitre.org/techniques/T1546/003/"],
        },
    }


def test_threat_underscore_tactic_tags() -> None:
    threat = threat_from_tags(["attack.privilege_escalation", "attack.t1059"])
    assert threat["tactic"]["id"] == ["TA0004"]
    assert threat["technique"]["id"] == ["T1059"]
    assert "subtechnique" not in threat["technique"]


def test_threat_revoked_technique_followed() -> None:
    threat = threat_from_tags(["attack.t1086"])
    assert threat["technique"]["id"] == ["T1059"]
    assert threat["technique"]["subtechnique"]["id"] == ["T1059.001"]
    assert threat["tactic"]["id"] == ["TA0002"]


def test_threat_without_attack_tags() -> None:
    assert threat_from_tags(["detection.threat-hunting"]) is None


def test_alert_copies_event_ecs_and_original() -> None:
    alert = build(EVENT)
    assert alert["host"] == {"name": "MXS01"}
    assert alert["user"] == {"name": "SYSTEM", "domain": "NT AUTHORITY"}
    assert alert["process"]["executable"] == "C:\\Windows\\System32\\cmd.exe"
    assert orjson.loads(alert["event"]["original"]) == EVENT
    assert alert["event"]["id"] == alert_id("797011dc-44f4-4e6f-9f10-a8ceefbe566b", EVENT)
    assert alert["tags"][0] == "sigma"


def test_alert_does_not_change_event() -> None:
    raw = {"winlog": {"event_data": {"ParentImage": "C:\\B\\EdgeTransport.exe", "Image": "C:\\x.exe"}}, "host": {"name": "h"}}
    before = orjson.dumps(raw)
    alert = build(raw)
    assert orjson.dumps(raw) == before
    assert alert["process"]["executable"] == "C:\\x.exe"
    assert alert["process"]["parent"]["executable"] == "C:\\B\\EdgeTransport.exe"


def test_alert_fills_ecs_from_flat_sysmon() -> None:
    flat = {"Computer": "MXS01", "User": "NT AUTHORITY\\SYSTEM", "ProcessId": "0x1f4", "ParentImage": "C:\\B\\EdgeTransport.exe"}
    alert = build(flat)
    assert alert["host"]["name"] == "MXS01"
    assert alert["user"] == {"name": "SYSTEM", "domain": "NT AUTHORITY"}
    assert alert["process"]["pid"] == 500


def test_id_same_for_same_record_in_any_form() -> None:
    ecs = {"winlog": {"computer_name": "MXS01", "channel": "Security", "record_id": "77"}}
    flat = {"Computer": "mxs01", "Channel": "Security", "EventRecordID": 77}
    assert event_identity(ecs) == event_identity(flat)


def test_id_differs_per_rule_and_event() -> None:
    assert alert_id("a", EVENT) != alert_id("b", EVENT)
    other = {**EVENT, "winlog": {**EVENT["winlog"], "record_id": "1235"}}
    assert alert_id("a", EVENT) != alert_id("a", other)


def test_id_without_record_uses_canonical_json() -> None:
    first = {"b": 1, "a": {"y": 2, "x": 1}}
    reordered = {"a": {"x": 1, "y": 2}, "b": 1}
    assert alert_id("r", first) == alert_id("r", reordered)
    assert alert_id("r", first) != alert_id("r", {"b": 2, "a": {"y": 2, "x": 1}})
