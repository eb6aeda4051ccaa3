"""The _bulk facade and /enrich with real clients in front of real OpenSearch and Elasticsearch."""

from __future__ import annotations

import asyncio
import gzip
import ssl
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from conftest import free_port, true_positive_variants
from enricher.alerts import alert_id

pytestmark = pytest.mark.engines

DEFAULT_RULE_ID = "797011dc-44f4-4e6f-9f10-a8ceefbe566b"


def engine_client(name: str, url: str, **options: Any) -> Any:
    if name == "opensearch":
        from opensearchpy import OpenSearch

        return OpenSearch(hosts=[url], **options)
    from elasticsearch import Elasticsearch

    return Elasticsearch(url, **options)


def bulk_helper(name: str) -> Any:
    if name == "opensearch":
        from opensearchpy import helpers
    else:
        from elasticsearch import helpers
    return helpers.bulk


def count(client: Any, index: str, query: dict[str, Any] | None = None) -> int:
    client.indices.refresh(index=index)
    return client.count(index=index, body={"query": query or {"match_all": {}}})["count"]


@pytest.fixture
def names() -> dict[str, str]:
    suffix = uuid.uuid4().hex[:8]
    return {"events": f"winlogbeat-test-{suffix}", "alerts": f"enricher-alerts-test-{suffix}"}


@pytest.fixture
def shipment(exchange_events: dict[str, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """21 real Exchange-host events and one true positive made from a real event."""
    _name, _form, positive = true_positive_variants({"ecs": exchange_events["ecs"]})[0]
    return [*exchange_events["ecs"], positive]


def test_python_client_bulk_through_facade(engine, start_server, names, shipment) -> None:
    name, url = engine
    server = start_server({"ENRICHER_UPSTREAM_URL": url, "ENRICHER_ALERTS_INDEX": names["alerts"]})
    client = engine_client(name, server.url)
    actions = [{"_index": names["events"], "_source": event} for event in shipment]

    success, errors = bulk_helper(name)(client, actions)

    assert success == len(shipment)
    assert errors == []
    upstream = engine_client(name, url)
    assert count(upstream, names["events"]) == len(shipment)
    documents = [hit["_source"] for hit in upstream.search(index=names["events"], body={"size": 100})["hits"]["hits"]]
    tagged = [document for document in documents if "rule" in document]
    assert len(tagged) == 1
    source = tagged[0]
    assert source["rule"]["name"] == ["WMI Backdoor Exchange Transport Agent"]
    assert source["threat"]["technique"]["subtechnique"]["id"] == ["T1546.003"]
    assert sorted(source["threat"]["tactic"]["id"]) == ["TA0003", "TA0004"]
    assert source["tags"] == ["sigma"]
    assert source["process"] == shipment[-1]["process"]
    untagged = [document for document in documents if "rule" not in document and "threat" not in document]
    assert len(untagged) == len(shipment) - 1
    upstream.indices.refresh(index=names["alerts"])
    alerts = upstream.search(index=names["alerts"], body={"query": {"match_all": {}}})
    assert [hit["_id"] for hit in alerts["hits"]["hits"]] == [alert_id(DEFAULT_RULE_ID, shipment[-1])]


def test_bulk_response_passed_through(engine, start_server, names, shipment) -> None:
    name, url = engine
    server = start_server({"ENRICHER_UPSTREAM_URL": url, "ENRICHER_ALERTS_INDEX": names["alerts"]})
    index = names["events"]
    lines = [
        orjson.dumps({"create": {"_index": index, "_id": "one"}}),
        orjson.dumps(shipment[0]),
        orjson.dumps({"create": {"_index": index, "_id": "one"}}),
        orjson.dumps(shipment[1]),
        orjson.dumps({"index": {"_index": index, "_id": "broken"}}),
        b'{"not json',
    ]
    body = b"\n".join(lines) + b"\n"
    headers = {"Content-Type": "application/x-ndjson", "Content-Encoding": "gzip"}

    response = httpx.post(f"{server.url}/_bulk", content=gzip.compress(body), headers=headers, timeout=60)

    assert response.status_code == 200
    assert response.headers.get("x-elastic-product") == "Elasticsearch" or name == "opensearch"
    result = response.json()
    assert result["errors"] is True
    statuses = [next(iter(item.values()))["status"] for item in result["items"]]
    assert statuses[0] == 201
    assert statuses[1] == 409
    assert statuses[2] == 400
    assert b'"errors":true' in response.content


def test_bulk_without_final_newline_is_400(engine, start_server, names) -> None:
    _name, url = engine
    server = start_server({"ENRICHER_UPSTREAM_URL": url, "ENRICHER_ALERTS_INDEX": names["alerts"]})
    body = orjson.dumps({"index": {"_index": names["events"]}}) + b"\n" + b'{"a": 1}'
    response = httpx.post(f"{server.url}/_bulk", content=body, headers={"Content-Type": "application/x-ndjson"})
    assert response.status_code == 400
    assert "terminated by a newline" in response.json()["error"]["reason"]


def test_bulk_over_limit_is_413(engine, start_server, names) -> None:
    _name, url = engine
    server = start_server(
        {"ENRICHER_UPSTREAM_URL": url, "ENRICHER_ALERTS_INDEX": names["alerts"], "ENRICHER_MAX_BODY_BYTES": "2048"}
    )
    line = orjson.dumps({"index": {"_index": names["events"]}}) + b"\n" + orjson.dumps({"x": "y" * 4000}) + b"\n"
    response = httpx.post(f"{server.url}/_bulk", content=line, headers={"Content-Type": "application/x-ndjson"})
    assert response.status_code == 413


def test_pass_through_requests(engine, start_server, names) -> None:
    name, url = engine
    server = start_server({"ENRICHER_UPSTREAM_URL": url, "ENRICHER_ALERTS_INDEX": names["alerts"]})
    direct = httpx.get(f"{url}/_cluster/health")
    proxied = httpx.get(f"{server.url}/_cluster/health", headers={"X-Opaque-Id": "enricher-test"})
    assert proxied.status_code == direct.status_code == 200
    assert proxied.json()["cluster_name"] == direct.json()["cluster_name"]

    template = {"index_patterns": [f"{names['events']}-tpl*"], "template": {"settings": {"number_of_shards": 1}}}
    put = httpx.put(f"{server.url}/_index_template/{names['events']}", json=template)
    assert put.status_code == 200
    assert put.json() == {"acknowledged": True}
    assert httpx.get(f"{url}/_index_template/{names['events']}").status_code == 200
    missing = httpx.get(f"{server.url}/_index_template/{names['events']}-absent")
    assert missing.status_code == 404

    root = httpx.get(f"{server.url}/")
    assert root.status_code == httpx.get(f"{url}/").status_code
    if name == "opensearch":
        assert root.json()["version"]["distribution"] == "opensearch"


class ToggleProxy:
    """A TCP relay in front of a real engine that can drop connections, to stop the upstream on demand.

    With ``tls`` it terminates TLS with that server context, as a cluster
    with TLS would, and keeps the bytes clients send in ``received``.
    """

    def __init__(self, target_url: str, tls: ssl.SSLContext | None = None) -> None:
        target = httpx.URL(target_url)
        self.target = (target.host, target.port)
        self.port = free_port()
        self.tls = tls
        self.received = bytearray()
        self.dropped = 0
        self._drop_left = 0
        self.url = f"{'https' if tls else 'http'}://127.0.0.1:{self.port}"
        self.loop = asyncio.new_event_loop()
        self.server: asyncio.base_events.Server | None = None
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.start()

    def start(self) -> None:
        async def open_server() -> None:
            self.server = await asyncio.start_server(
                self._relay, "127.0.0.1", self.port, reuse_address=True, ssl=self.tls
            )

        asyncio.run_coroutine_threadsafe(open_server(), self.loop).result(10)

    def stop(self) -> None:
        async def close_server() -> None:
            assert self.server is not None
            self.server.close()
            for task in [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]:
                task.cancel()
            await asyncio.sleep(0.1)

        asyncio.run_coroutine_threadsafe(close_server(), self.loop).result(10)

    def drop_next(self, count: int) -> None:
        """Drop the open connections and close the next ``count`` new ones at once: the upstream is down."""

        async def drop() -> None:
            self._drop_left = count
            for task in [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]:
                task.cancel()
            await asyncio.sleep(0.1)

        asyncio.run_coroutine_threadsafe(drop(), self.loop).result(10)

    def close(self) -> None:
        self.stop()
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self._drop_left > 0:
            self._drop_left -= 1
            self.dropped += 1
            writer.close()
            return
        upstream_reader, upstream_writer = await asyncio.open_connection(*self.target)

        async def pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter, record: bool) -> None:
            try:
                while data := await source.read(65536):
                    if record:
                        self.received.extend(data)
                    sink.write(data)
                    await sink.drain()
            finally:
                sink.close()

        await asyncio.gather(
            pipe(reader, upstream_writer, True), pipe(upstream_reader, writer, False), return_exceptions=True
        )


@pytest.fixture
def proxy(engine) -> Iterator[ToggleProxy]:
    _name, url = engine
    relay = ToggleProxy(url)
    yield relay
    relay.close()


def test_upstream_down_then_retried_exactly_once(engine, proxy, start_server, names, shipment) -> None:
    name, url = engine
    # Alerts go to the engine directly; only the facade's upstream goes down.
    server = start_server(
        {"ENRICHER_UPSTREAM_URL": proxy.url, "ENRICHER_CLUSTER_URL": url, "ENRICHER_ALERTS_INDEX": names["alerts"]}
    )
    batches = [shipment[:11], shipment[11:]]

    def body(batch: list[dict[str, Any]]) -> bytes:
        return b"".join(
            orjson.dumps({"index": {"_index": names["events"]}}) + b"\n" + orjson.dumps(event) + b"\n" for event in batch
        )

    headers = {"Content-Type": "application/x-ndjson"}
    first = httpx.post(f"{server.url}/_bulk", content=body(batches[0]), headers=headers, timeout=60)
    assert first.status_code == 200
    assert first.json()["errors"] is False

    proxy.stop()
    unavailable = httpx.post(f"{server.url}/_bulk", content=body(batches[1]), headers=headers, timeout=60)
    assert unavailable.status_code in (429, 503)
    assert "retry-after" in unavailable.headers

    proxy.start()
    # A sender retries the rejected request as it was.
    deadline = time.monotonic() + 30
    while True:
        retried = httpx.post(f"{server.url}/_bulk", content=body(batches[1]), headers=headers, timeout=60)
        if retried.status_code == 200 or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert retried.status_code == 200
    assert retried.json()["errors"] is False

    upstream = engine_client(name, url)
    assert count(upstream, names["events"]) == len(shipment)
    assert count(upstream, names["events"], {"exists": {"field": "rule.id"}}) == 1
    assert count(upstream, names["alerts"]) == 1


def make_certificates(folder: Path, name: str) -> tuple[Path, Path, Path]:
    """Create a CA and a server certificate for 127.0.0.1 signed by it, with openssl; return (ca, cert, key)."""
    ca_key, ca_cert = folder / f"{name}-ca.key", folder / f"{name}-ca.pem"
    key, request, cert = folder / f"{name}.key", folder / f"{name}.csr", folder / f"{name}.pem"
    extensions = folder / f"{name}.ext"
    extensions.write_text("subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n")
    commands = [
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", ca_key, "-out", ca_cert,
         "-days", "2", "-subj", f"/CN={name} test CA"],
        ["openssl", "req", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", request, "-subj", "/CN=127.0.0.1"],
        ["openssl", "x509", "-req", "-in", request, "-CA", ca_cert, "-CAkey", ca_key, "-CAcreateserial",
         "-out", cert, "-days", "2", "-extfile", extensions],
    ]
    for command in commands:
        subprocess.run([str(part) for part in command], check=True, capture_output=True)
    return ca_cert, cert, key


def test_upstream_tls_and_sender_authorization(engine, start_server, names, shipment, tmp_path) -> None:
    name, url = engine
    ca_cert, cert, key = make_certificates(tmp_path, "upstream")
    other_ca, _cert, _key = make_certificates(tmp_path, "other")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    proxy = ToggleProxy(url, tls=context)
    try:
        trusted = start_server(
            {
                "ENRICHER_UPSTREAM_URL": proxy.url,
                "ENRICHER_UPSTREAM_CA_CERTS": str(ca_cert),
                "ENRICHER_CLUSTER_URL": url,
                "ENRICHER_ALERTS_INDEX": names["alerts"],
            }
        )
        body = orjson.dumps({"index": {"_index": names["events"]}}) + b"\n" + orjson.dumps(shipment[-1]) + b"\n"
        sender_headers = {"Content-Type": "application/x-ndjson", "Authorization": "Basic c2hpcHBlcjpzM2NyZXQ="}

        response = httpx.post(f"{trusted.url}/_bulk", content=body, headers=sender_headers, timeout=60)

        assert response.status_code == 200
        assert response.json()["errors"] is False
        # The cluster (here the TLS endpoint in front of it) got the sender's credentials.
        head = bytes(proxy.received).split(b"\r\n\r\n", 1)[0].decode()
        forwarded = [line.split(":", 1)[1].strip() for line in head.split("\r\n")[1:] if line.lower().startswith("authorization:")]
        assert forwarded == ["Basic c2hpcHBlcjpzM2NyZXQ="]
        assert count(engine_client(name, url), names["events"]) == 1

        untrusted = start_server(
            {
                "ENRICHER_UPSTREAM_URL": proxy.url,
                "ENRICHER_UPSTREAM_CA_CERTS": str(other_ca),
                "ENRICHER_CLUSTER_URL": url,
                "ENRICHER_ALERTS_INDEX": names["alerts"],
            }
        )
        unavailable = httpx.post(f"{untrusted.url}/_bulk", content=body, headers=sender_headers, timeout=60)
        assert unavailable.status_code == 503
        assert "CERTIFICATE_VERIFY_FAILED" in unavailable.json()["error"]["reason"]
    finally:
        proxy.close()


def test_client_retries_through_upstream_outage(engine, proxy, start_server, names, shipment) -> None:
    name, url = engine
    server = start_server(
        {"ENRICHER_UPSTREAM_URL": proxy.url, "ENRICHER_CLUSTER_URL": url, "ENRICHER_ALERTS_INDEX": names["alerts"]}
    )
    # The client's own transport retries a 503, as Beats and Logstash do.
    client = engine_client(name, server.url, retry_on_status=(503,), max_retries=10)
    helper = bulk_helper(name)
    first, _ = helper(client, [{"_index": names["events"], "_source": event} for event in shipment[:11]])
    assert first == 11

    # The upstream goes down: the facade's next 3 attempts fail, the 4th passes.
    proxy.drop_next(3)
    second, errors = helper(client, [{"_index": names["events"], "_source": event} for event in shipment[11:]])

    assert proxy.dropped == 3
    assert second == len(shipment) - 11
    assert errors == []
    upstream = engine_client(name, url)
    assert count(upstream, names["events"]) == len(shipment)
    assert count(upstream, names["events"], {"exists": {"field": "rule.id"}}) == 1
    assert count(upstream, names["alerts"]) == 1


def test_alert_sink_down_answers_503_before_forwarding(engine, start_server, names, shipment) -> None:
    name, url = engine
    server = start_server(
        {
            "ENRICHER_UPSTREAM_URL": url,
            "ENRICHER_CLUSTER_URL": f"http://127.0.0.1:{free_port()}",
            "ENRICHER_ALERTS_INDEX": names["alerts"],
        }
    )
    body = orjson.dumps({"index": {"_index": names["events"]}}) + b"\n" + orjson.dumps(shipment[-1]) + b"\n"
    response = httpx.post(f"{server.url}/_bulk", content=body, headers={"Content-Type": "application/x-ndjson"}, timeout=60)
    assert response.status_code == 503
    upstream = engine_client(name, url)
    assert not upstream.indices.exists(index=names["events"])


# What logstash-filter-http sends with body_format => "text" and the event's
# JSON text as body, as the README's snippet configures it.
LOGSTASH_FILTER_HEADERS = {"Content-Type": "text/plain", "User-Agent": "Manticore 0.9.1"}


def test_enrich_one_event_returns_tags(tmp_path, start_server, shipment) -> None:
    server = start_server({})
    positive = httpx.post(f"{server.url}/enrich", content=orjson.dumps(shipment[-1]), headers=LOGSTASH_FILTER_HEADERS)
    assert positive.status_code == 200
    tags = positive.json()
    assert tags["rule"]["id"] == [DEFAULT_RULE_ID]
    assert tags["threat"]["technique"]["id"] == ["T1546"]
    assert tags["threat"]["technique"]["subtechnique"]["id"] == ["T1546.003"]
    assert tags["tags"] == ["sigma"]

    negative = httpx.post(f"{server.url}/enrich", content=orjson.dumps(shipment[0]), headers=LOGSTASH_FILTER_HEADERS)
    assert negative.json() == {}
    alerts = [orjson.loads(line) for line in (tmp_path / "enricher-alerts.ndjson").read_bytes().splitlines()]
    assert [alert["rule"]["id"] for alert in alerts] == [DEFAULT_RULE_ID]


def test_enrich_array_and_event_mode(start_server, shipment) -> None:
    server = start_server({})
    batch = [shipment[0], shipment[-1]]
    tags = httpx.post(f"{server.url}/enrich", content=orjson.dumps(batch), headers=LOGSTASH_FILTER_HEADERS).json()
    assert [entry.get("rule", {}).get("id") for entry in tags] == [None, [DEFAULT_RULE_ID]]

    events = httpx.post(
        f"{server.url}/enrich", params={"mode": "event"}, content=orjson.dumps(batch), headers=LOGSTASH_FILTER_HEADERS
    ).json()
    assert events[0] == shipment[0]
    assert events[1]["rule"]["id"] == [DEFAULT_RULE_ID]
    assert events[1]["process"] == shipment[-1]["process"]


def test_enrich_rejects_bad_input(start_server) -> None:
    server = start_server({})
    assert httpx.post(f"{server.url}/enrich", content=b"[1, 2]", headers=LOGSTASH_FILTER_HEADERS).status_code == 400
    assert httpx.post(f"{server.url}/enrich", params={"mode": "x"}, content=b"{}").status_code == 400
