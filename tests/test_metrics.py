"""GET /metrics sums every uvicorn worker's counters (Prometheus multiprocess mode)."""

from __future__ import annotations

from typing import Any

import httpx
import orjson
from prometheus_client.parser import text_string_to_metric_families

from conftest import true_positive_variants

DEFAULT_RULE_ID = "797011dc-44f4-4e6f-9f10-a8ceefbe566b"


def sample(text: str, name: str, **labels: str) -> float:
    """Return the sum of the samples called ``name`` whose labels include ``labels``; 0 when absent."""
    total = 0.0
    for family in text_string_to_metric_families(text):
        for found in family.samples:
            if found.name == name and all(found.labels.get(key) == value for key, value in labels.items()):
                total += found.value
    return total


def test_metrics_two_workers_exact_totals(start_server, exchange_events: dict[str, list[dict[str, Any]]]) -> None:
    server = start_server({}, workers=2)
    positives = [event for _name, _form, event in true_positive_variants(exchange_events)]
    batch = [*exchange_events["ecs"], positives[0]]
    body = orjson.dumps(batch)
    requests = 24
    # New connections each time, so the kernel spreads them over both workers.
    for _ in range(requests):
        assert httpx.post(f"{server.url}/ingest", content=body, timeout=30).status_code == 200
    bad = httpx.post(f"{server.url}/ingest", content=b'[{"a": 1}, 7, "x"]', timeout=30)
    assert bad.json()["dead_letters"] == 2

    text = httpx.get(f"{server.url}/metrics", timeout=30).text

    assert sample(text, "enricher_events_received_total", route="ingest") == requests * len(batch) + 1
    assert sample(text, "enricher_events_matched_total", route="ingest") == requests
    rule_name = "WMI Backdoor Exchange Transport Agent"
    assert sample(text, "enricher_rule_matches_total", rule_id=DEFAULT_RULE_ID, rule_name=rule_name) == requests
    assert sample(text, "enricher_alerts_written_total") == 1
    assert sample(text, "enricher_alerts_duplicate_total") == requests - 1
    assert sample(text, "enricher_dead_letters_total", route="ingest") == 2
    ingest_requests = sample(text, "enricher_request_duration_seconds_count", route="/ingest", method="POST", status="200")
    assert ingest_requests == requests + 1


def test_metrics_one_worker(start_server, exchange_events: dict[str, list[dict[str, Any]]]) -> None:
    server = start_server({})
    _name, _form, positive = true_positive_variants(exchange_events)[0]
    assert httpx.post(f"{server.url}/ingest", content=orjson.dumps(positive), timeout=30).status_code == 200

    text = httpx.get(f"{server.url}/metrics", timeout=30).text

    assert sample(text, "enricher_events_received_total", route="ingest") == 1
    assert sample(text, "enricher_alerts_written_total") == 1
    assert sample(text, "enricher_request_duration_seconds_count", route="/ingest", method="POST", status="200") == 1
