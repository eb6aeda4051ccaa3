"""The default rule over real process-creation events in ECS, raw Winlogbeat and flat Sysmon form."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from conftest import CONHOST, OLE_CONVERTER, read_ndjson, set_image, true_positive_variants
from enricher.alerts import AlertBuilder
from enricher.detector import Detector
from enricher.rules.fieldmap import FieldMapping
from enricher.rules.loader import load_rules
from enricher.rules.logsource import LogsourceTable

DEFAULT_RULE_ID = "797011dc-44f4-4e6f-9f10-a8ceefbe566b"
CORPUS_FILES = {
    "ecs": "ecs/process_creation.ecs.ndjson.gz",
    "winlogbeat_raw": "winlogbeat_raw/process_creation.winlogbeat_raw.ndjson.gz",
    "flat": "sysmon_fields/process_creation.flat.ndjson.gz",
}


@pytest.fixture(scope="module")
def detector() -> Detector:
    return Detector(load_rules(), FieldMapping.default(), LogsourceTable.load())


@pytest.mark.parametrize("form", sorted(CORPUS_FILES))
def test_corpus_has_no_default_rule_alert(form: str, shared_data: Path, detector: Detector) -> None:
    events = read_ndjson(shared_data / "events" / CORPUS_FILES[form])
    assert len(events) == 8059
    matched = [event for event in events if detector.match(event)]
    assert matched == []


def test_edgetransport_non_process_records_no_alert(shared_data: Path, detector: Detector) -> None:
    records = read_ndjson(shared_data / "events" / "exchange" / "proxylogon_edgetransport_non_process_events.raw.ndjson")
    assert len(records) == 255
    assert [record for record in records if detector.match(record)] == []


def test_exchange_events_unchanged_no_alert(exchange_events: dict[str, list[dict[str, Any]]], detector: Detector) -> None:
    for form, events in exchange_events.items():
        assert len(events) == 21, form
        assert [event for event in events if detector.match(event)] == [], form


def test_true_positives_one_alert_each(exchange_events: dict[str, list[dict[str, Any]]], detector: Detector) -> None:
    variants = true_positive_variants(exchange_events)
    assert len(variants) == 12
    for name, _form, event in variants:
        assert [rule.id for rule in detector.match(event)] == [DEFAULT_RULE_ID], name


@pytest.mark.parametrize("image", [CONHOST, CONHOST.upper(), OLE_CONVERTER, OLE_CONVERTER.lower()])
def test_filtered_children_no_alert(image: str, exchange_events: dict[str, list[dict[str, Any]]], detector: Detector) -> None:
    for name, form, event in true_positive_variants(exchange_events):
        assert detector.match(set_image(event, form, image)) == [], name


def test_true_positive_alert_fields(exchange_events: dict[str, list[dict[str, Any]]], detector: Detector) -> None:
    builder = AlertBuilder(detector.mapping)
    for name, _form, event in true_positive_variants(exchange_events):
        (rule,) = detector.match(event)
        alert = builder.build(event, rule)
        assert alert["event"]["kind"] == "alert", name
        assert alert["rule"]["id"] == DEFAULT_RULE_ID, name
        assert alert["rule"]["name"] == "WMI Backdoor Exchange Transport Agent", name
        assert alert["rule"]["author"] == ["Florian Roth (Nextron Systems)"], name
        assert alert["rule"]["license"] == "DRL-1.1", name
        assert alert["rule"]["version"] == "2023-02-08", name
        assert alert["rule"]["ruleset"] == "sigma", name
        assert alert["rule"]["category"] == "process_creation", name
        assert alert["sigma"]["level"] == "critical", name
        assert alert["sigma"]["status"] == "test", name
        assert alert["threat"]["technique"]["id"] == ["T1546"], name
        assert alert["threat"]["technique"]["subtechnique"]["id"] == ["T1546.003"], name
        assert sorted(alert["threat"]["tactic"]["id"]) == ["TA0003", "TA0004"], name
        assert alert["process"]["parent"]["executable"].lower().endswith("\\edgetransport.exe"), name
        assert alert["host"]["name"] == "MXS01.azsentinel.local", name
        assert alert["@timestamp"].startswith("2021-03-14"), name
