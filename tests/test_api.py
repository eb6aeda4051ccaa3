"""POST /ingest with the file sink: Logstash http output wire formats, dead letters, health."""

from __future__ import annotations

import gzip
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from fastapi.testclient import TestClient

from conftest import read_ndjson, true_positive_variants
from enricher.api import create_app
from enricher.config import Settings

LOGSTASH_HEADERS = {"Content-Type": "application/json", "User-Agent": "Manticore 0.9.1"}


@pytest.fixture
def client(tmp_path: Path):
    settings = Settings(alerts_file=tmp_path / "alerts.ndjson", dead_letter_file=tmp_path / "dead.ndjson")
    with TestClient(create_app(settings)) as test_client:
        test_client.alerts_file = settings.alerts_file
        test_client.dead_letter_file = settings.dead_letter_file
        yield test_client


@pytest.fixture
def batch(exchange_events: dict[str, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """Real Exchange-host events with exactly one true positive among them."""
    _name, _form, positive = true_positive_variants({"ecs": exchange_events["ecs"]})[0]
    return [*exchange_events["ecs"], positive]


def test_json_batch_one_alert(client: TestClient, batch: list[dict[str, Any]]) -> None:
    response = client.post("/ingest", content=orjson.dumps(batch), headers=LOGSTASH_HEADERS)
    assert response.status_code == 200
    assert response.json()["events"] == 22
    assert response.json()["matches"] == 1
    assert response.json()["alerts_written"] == 1
    alerts = read_ndjson(client.alerts_file)
    assert len(alerts) == 1
    assert alerts[0]["rule"]["id"] == "797011dc-44f4-4e6f-9f10-a8ceefbe566b"


def test_replayed_batch_no_second_alert(client: TestClient, batch: list[dict[str, Any]]) -> None:
    body = orjson.dumps(batch)
    client.post("/ingest", content=body, headers=LOGSTASH_HEADERS)
    response = client.post("/ingest", content=body, headers=LOGSTASH_HEADERS)
    assert response.json()["alerts_written"] == 0
    assert response.json()["alerts_duplicate"] == 1
    assert len(read_ndjson(client.alerts_file)) == 1


def test_json_format_one_event_per_request(client: TestClient, batch: list[dict[str, Any]]) -> None:
    results = [client.post("/ingest", content=orjson.dumps(event), headers=LOGSTASH_HEADERS).json() for event in batch]
    assert sum(result["events"] for result in results) == 22
    assert sum(result["alerts_written"] for result in results) == 1


def test_gzip_ndjson_body(client: TestClient, batch: list[dict[str, Any]]) -> None:
    body = gzip.compress(b"".join(orjson.dumps(event) + b"\n" for event in batch))
    headers = {**LOGSTASH_HEADERS, "Content-Encoding": "gzip"}
    response = client.post("/ingest", content=body, headers=headers)
    assert response.status_code == 200
    assert response.json()["alerts_written"] == 1


def test_not_json_is_400_with_position(client: TestClient) -> None:
    response = client.post("/ingest", content=b'{"a": tru}', headers=LOGSTASH_HEADERS)
    assert response.status_code == 400
    assert response.json()["position"] == 6
    assert "invalid JSON" in response.json()["error"]


def test_batch_bad_elements_dead_lettered(client: TestClient, batch: list[dict[str, Any]]) -> None:
    body = b"[" + orjson.dumps(batch[-1]) + b', "not an object", 7]'
    response = client.post("/ingest", content=body, headers=LOGSTASH_HEADERS)
    assert response.status_code == 200
    assert response.json()["alerts_written"] == 1
    assert response.json()["dead_letters"] == 2
    assert response.json()["dead_letter_positions"] == ["element 1", "element 2"]
    letters = read_ndjson(client.dead_letter_file)
    assert [letter["event"]["original"] for letter in letters] == ['"not an object"', "7"]


def test_unknown_encoding_is_415(client: TestClient) -> None:
    response = client.post("/ingest", content=b"{}", headers={**LOGSTASH_HEADERS, "Content-Encoding": "br"})
    assert response.status_code == 415


def test_oversized_gzip_is_413(tmp_path: Path) -> None:
    settings = Settings(alerts_file=tmp_path / "a.ndjson", dead_letter_file=tmp_path / "d.ndjson", max_body_bytes=4096)
    with TestClient(create_app(settings)) as client:
        body = gzip.compress(b"[" + b"{}," * 5000 + b"{}]")
        response = client.post("/ingest", content=body, headers={"Content-Encoding": "gzip"})
    assert response.status_code == 413


def test_health_and_ready(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["rules"] == 1
    assert ready.json()["sink_reachable"] is True


def test_serve_command_default_file_sink(start_server, tmp_path: Path, batch: list[dict[str, Any]]) -> None:
    server = start_server({})
    response = httpx.post(f"{server.url}/ingest", content=orjson.dumps(batch), headers=LOGSTASH_HEADERS, timeout=30)
    assert response.status_code == 200
    assert response.json()["alerts_written"] == 1
    alerts = read_ndjson(tmp_path / "enricher-alerts.ndjson")
    assert [alert["rule"]["id"] for alert in alerts] == ["797011dc-44f4-4e6f-9f10-a8ceefbe566b"]


def test_sink_down_is_503_with_retry_after(start_server, batch: list[dict[str, Any]]) -> None:
    # A closed local port stands in for a cluster that is down.
    from conftest import free_port

    server = start_server({"ENRICHER_CLUSTER_URL": f"http://127.0.0.1:{free_port()}", "ENRICHER_RETRY_AFTER": "7"})
    response = httpx.post(f"{server.url}/ingest", content=orjson.dumps(batch), headers=LOGSTASH_HEADERS, timeout=30)
    assert response.status_code == 503
    assert response.headers["retry-after"] == "7"
    assert httpx.get(f"{server.url}/readyz", timeout=30).status_code == 503


def test_sink_down_batch_without_alerts_passes(start_server, batch: list[dict[str, Any]]) -> None:
    # Nothing has to be stored, so the batch is done; readiness still reports the sink.
    from conftest import free_port

    server = start_server({"ENRICHER_CLUSTER_URL": f"http://127.0.0.1:{free_port()}"})
    response = httpx.post(f"{server.url}/ingest", content=orjson.dumps(batch[:-1]), headers=LOGSTASH_HEADERS, timeout=30)
    assert response.status_code == 200
    assert response.json()["matches"] == 0
