"""Log lines: JSON when configured, one line per start and stop, never a secret."""

from __future__ import annotations

import orjson
import httpx

from conftest import free_port, true_positive_variants

SECRETS = ("url-password-4711", "env-password-4712", "api-key-secret-4713")


def test_secrets_never_logged(start_server, exchange_events) -> None:
    closed = free_port()
    server = start_server(
        {
            "ENRICHER_CLUSTER_URL": f"http://alerts-user:{SECRETS[0]}@127.0.0.1:{closed}",
            "ENRICHER_CLUSTER_PASSWORD": SECRETS[1],
            "ENRICHER_CLUSTER_USERNAME": "alerts-user",
            "ENRICHER_CLUSTER_API_KEY": SECRETS[2],
            "ENRICHER_UPSTREAM_URL": f"http://bulk-user:{SECRETS[0]}@127.0.0.1:{closed}",
            "ENRICHER_LOG_LEVEL": "debug",
        }
    )
    _name, _form, positive = true_positive_variants(exchange_events)[0]
    assert httpx.post(f"{server.url}/ingest", content=orjson.dumps(positive), timeout=30).status_code == 503
    assert httpx.post(f"{server.url}/_bulk", content=b'{"index":{}}\n{"a":1}\n', timeout=30).status_code == 503
    assert httpx.get(f"{server.url}/readyz", timeout=30).status_code == 503
    server.stop()

    log = server.log.read_text()
    assert "not available" in log
    assert "unreachable" in log
    for secret in SECRETS:
        assert secret not in log


def test_json_log_lines(start_server) -> None:
    server = start_server({"ENRICHER_LOG_FORMAT": "json"})
    assert httpx.post(f"{server.url}/ingest", content=b'{"a": 1}', timeout=30).status_code == 200
    server.stop()

    lines = [line for line in server.log.read_text().splitlines() if line.strip()]
    records = [orjson.loads(line) for line in lines]
    messages = [record["message"] for record in records]
    assert all(set(record) >= {"@timestamp", "log.level", "log.logger", "message"} for record in records)
    assert any(message.startswith("enricher 0.1.0 started: 1 rules") for message in messages)
    assert any(message == "enricher stopped" for message in messages)
    # One request is no reason for a line at info level.
    assert not any("POST /ingest" in message for message in messages)
