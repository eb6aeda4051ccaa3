"""Alerts written through /ingest, enricher scan and enricher setup into real OpenSearch and Elasticsearch."""

from __future__ import annotations

import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from conftest import true_positive_variants
from enricher.alerts import alert_id

pytestmark = pytest.mark.engines

DEFAULT_RULE_ID = "797011dc-44f4-4e6f-9f10-a8ceefbe566b"
LOGSTASH_HEADERS = {"Content-Type": "application/json", "User-Agent": "Manticore 0.9.1"}


def client_for(name: str, url: str) -> Any:
    """The engine's own official Python client, for reading back what enricher wrote."""
    if name == "opensearch":
        from opensearchpy import OpenSearch

        return OpenSearch(hosts=[url])
    from elasticsearch import Elasticsearch

    return Elasticsearch(url)


def search_alerts(client: Any, index: str) -> list[dict[str, Any]]:
    client.indices.refresh(index=index)
    response = client.search(index=index, body={"query": {"match_all": {}}, "size": 100})
    return response["hits"]["hits"]


@pytest.fixture
def alerts_index() -> str:
    return f"enricher-alerts-test-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def batch(exchange_events: dict[str, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    _name, _form, positive = true_positive_variants({"ecs": exchange_events["ecs"]})[0]
    return [*exchange_events["ecs"], positive]


def test_ingest_json_batch_one_alert(engine, start_server, alerts_index: str, batch: list[dict[str, Any]]) -> None:
    name, url = engine
    server = start_server({"ENRICHER_CLUSTER_URL": url, "ENRICHER_ALERTS_INDEX": alerts_index})
    body = orjson.dumps(batch)

    first = httpx.post(f"{server.url}/ingest", content=body, headers=LOGSTASH_HEADERS, timeout=60)
    assert first.status_code == 200, first.text
    assert first.json()["matches"] == 1
    assert first.json()["alerts_written"] == 1

    client = client_for(name, url)
    hits = search_alerts(client, alerts_index)
    assert len(hits) == 1
    alert = hits[0]
    assert alert["_id"] == alert_id(DEFAULT_RULE_ID, batch[-1])
    assert alert["_source"]["event"]["id"] == alert["_id"]
    assert alert["_index"] == f"{alerts_index}-000001"
    source = alert["_source"]
    assert source["event"]["kind"] == "alert"
    assert source["rule"]["id"] == DEFAULT_RULE_ID
    assert source["rule"]["author"] == ["Florian Roth (Nextron Systems)"]
    assert source["threat"]["framework"] == "MITRE ATT&CK"
    assert source["threat"]["technique"]["subtechnique"]["id"] == ["T1546.003"]
    assert sorted(source["threat"]["tactic"]["id"]) == ["TA0003", "TA0004"]
    assert source["sigma"]["level"] == "critical"

    replay = httpx.post(f"{server.url}/ingest", content=body, headers=LOGSTASH_HEADERS, timeout=60)
    assert replay.status_code == 200
    assert replay.json()["alerts_written"] == 0
    assert replay.json()["alerts_duplicate"] == 1
    assert len(search_alerts(client, alerts_index)) == 1


def test_alerts_mapping_applied(engine, start_server, alerts_index: str, batch: list[dict[str, Any]]) -> None:
    name, url = engine
    server = start_server({"ENRICHER_CLUSTER_URL": url, "ENRICHER_ALERTS_INDEX": alerts_index})
    response = httpx.post(f"{server.url}/ingest", content=orjson.dumps(batch), headers=LOGSTASH_HEADERS, timeout=60)
    assert response.status_code == 200

    client = client_for(name, url)
    mappings = client.indices.get_mapping(index=alerts_index)
    properties = next(iter(mappings.values()))["mappings"]["properties"]
    assert properties["@timestamp"]["type"] == "date"
    assert properties["rule"]["properties"]["id"]["type"] == "keyword"
    assert properties["threat"]["properties"]["tactic"]["properties"]["id"]["type"] == "keyword"
    assert properties["event"]["properties"]["original"]["index"] is False
    command_line = properties["process"]["properties"]["command_line"]["type"]
    assert command_line == ("wildcard" if name == "opensearch" else "keyword")
    aliases = client.indices.get_alias(name=alerts_index)
    assert aliases[f"{alerts_index}-000001"]["aliases"][alerts_index]["is_write_index"] is True

    # A term query on a keyword field finds the alert by its mapped value.
    client.indices.refresh(index=alerts_index)
    found = client.search(index=alerts_index, body={"query": {"term": {"threat.technique.subtechnique.id": "T1546.003"}}})
    assert found["hits"]["total"]["value"] == 1


def run_enricher(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess:
    import os

    return subprocess.run(
        [sys.executable, "-m", "enricher", *args],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, **(env or {})},
        cwd=cwd,
    )


def test_scan_into_engine_exactly_once(
    engine, alerts_index: str, tmp_path: Path, exchange_events: dict[str, list[dict[str, Any]]]
) -> None:
    name, url = engine
    variants = true_positive_variants(exchange_events)
    events_file = tmp_path / "events.ndjson"
    events_file.write_bytes(b"".join(orjson.dumps(event) + b"\n" for _name, _form, event in variants))

    first = run_enricher("scan", "--cluster-url", url, "--alerts-index", alerts_index, str(events_file))
    assert first.returncode == 0, first.stderr
    assert "12 events, 12 matches" in first.stderr
    client = client_for(name, url)
    hits = search_alerts(client, alerts_index)
    expected_ids = {alert_id(DEFAULT_RULE_ID, event) for _name, _form, event in variants}
    assert {hit["_id"] for hit in hits} == expected_ids

    second = run_enricher("scan", "--cluster-url", url, "--alerts-index", alerts_index, str(events_file))
    assert second.returncode == 0, second.stderr
    assert "0 alerts written" in second.stderr
    assert len(search_alerts(client, alerts_index)) == len(expected_ids)


def test_scan_real_corpus_no_alert(engine, alerts_index: str, shared_data: Path) -> None:
    name, url = engine
    corpus = shared_data / "events" / "ecs" / "process_creation.ecs.ndjson.gz"
    completed = run_enricher("scan", "--cluster-url", url, "--alerts-index", alerts_index, str(corpus))
    assert completed.returncode == 0, completed.stderr
    assert "8059 events, 0 matches, 0 alerts written" in completed.stderr
    assert search_alerts(client_for(name, url), alerts_index) == []


def test_setup_twice_changes_nothing(engine, alerts_index: str) -> None:
    name, url = engine
    dry = run_enricher("setup", "--cluster-url", url, "--alerts-index", alerts_index, "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert f"template: would install index template {alerts_index}" in dry.stdout.splitlines()
    client = client_for(name, url)
    assert not client.indices.exists_index_template(name=alerts_index)

    first = run_enricher("setup", "--cluster-url", url, "--alerts-index", alerts_index)
    assert first.returncode == 0, first.stderr
    lines = first.stdout.splitlines()
    # The test distributions have neither ILM nor ISM, so setup reports the skip and goes on.
    endpoint = "ISM (/_plugins/_ism)" if name == "opensearch" else "ILM (/_ilm)"
    assert lines[0] == f"lifecycle: skipped: {url} has no {endpoint} endpoint"
    assert lines[1:3] == ["template: installed", "index: created"]
    assert lines[3].startswith("dashboards: skipped: no dashboards URL")

    template_before = client.indices.get_index_template(name=alerts_index)
    mapping_before = client.indices.get_mapping(index=alerts_index)

    second = run_enricher("setup", "--cluster-url", url, "--alerts-index", alerts_index)
    assert second.returncode == 0, second.stderr
    assert second.stdout.splitlines()[1:3] == ["template: unchanged", "index: unchanged"]
    assert client.indices.get_index_template(name=alerts_index) == template_before
    assert client.indices.get_mapping(index=alerts_index) == mapping_before
