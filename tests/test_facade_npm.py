"""The bulk helper of the official Elasticsearch JavaScript client (npm ``@elastic/elasticsearch``) through the _bulk facade.

``tests/node/bulk.mjs`` runs under Node.js with the client version pinned in
``tests/node/package-lock.json``. Only Elasticsearch is tested, because the
client cannot talk to OpenSearch. The client (9.4.3) sends bulk bodies as
``application/vnd.elasticsearch+x-ndjson; compatible-with=9``, which
OpenSearch 3.8 rejects with 406. The client also rejects every 2xx response
without the ``X-Elastic-Product: Elasticsearch`` header, which OpenSearch
does not send.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import uuid
from pathlib import Path
from typing import Any

import orjson
import pytest

from conftest import REPO, missing_resource, true_positive_variants
from facade_checks import DEFAULT_RULE_ID, all_sources, canonical, count_documents, engine_client, wait_for_documents

pytestmark = pytest.mark.engines

NODE_DIR = REPO / "tests" / "node"


@pytest.fixture(scope="module")
def node() -> str:
    """Path of ``node``, with the locked npm packages installed in tests/node."""
    node_path = shutil.which("node")
    if node_path is None:
        missing_resource("node is not installed. Install Node.js 20 or newer with npm")
    if not (NODE_DIR / "node_modules" / "@elastic" / "elasticsearch").is_dir():
        npm = shutil.which("npm")
        if npm is None:
            missing_resource(
                "npm is not installed and tests/node/node_modules is missing. Install npm, or run npm ci in tests/node"
            )
        install = subprocess.run([npm, "ci"], cwd=NODE_DIR, capture_output=True, text=True, timeout=600)
        assert install.returncode == 0, f"npm ci in tests/node failed:\n{install.stdout}\n{install.stderr}"
    return node_path


@pytest.fixture
def events_file(exchange_events: dict[str, list[dict[str, Any]]], tmp_path: Path) -> Path:
    """NDJSON of the 21 real ECS events and one true positive made from a real event, last."""
    _name, _form, positive = true_positive_variants({"ecs": exchange_events["ecs"]})[0]
    path = tmp_path / "events.ndjson"
    path.write_bytes(b"".join(orjson.dumps(event) + b"\n" for event in [*exchange_events["ecs"], positive]))
    return path


def test_npm_bulk_helper_through_facade(engine_urls, start_server, node: str, events_file: Path) -> None:
    if "elasticsearch" not in engine_urls:
        missing_resource("no elasticsearch test node URL")
    url = engine_urls["elasticsearch"]
    suffix = uuid.uuid4().hex[:8]
    events_index = f"npm-test-{suffix}"
    alerts_index = f"enricher-alerts-test-{suffix}"
    server = start_server({"ENRICHER_UPSTREAM_URL": url, "ENRICHER_ALERTS_INDEX": alerts_index})
    events = [orjson.loads(line) for line in events_file.read_bytes().splitlines()]

    completed = subprocess.run(
        [node, str(NODE_DIR / "bulk.mjs"), server.url, events_index, str(events_file)],
        capture_output=True,
        text=True,
        timeout=120,
    )

    diagnostics = f"bulk.mjs exited with {completed.returncode}\nstdout: {completed.stdout}\nstderr: {completed.stderr}"
    assert completed.returncode == 0, diagnostics
    summary = json.loads(completed.stdout)
    assert summary["total"] == len(events), diagnostics
    assert summary["successful"] == len(events), diagnostics
    assert summary["failed"] == 0, diagnostics
    assert summary["drops"] == [], diagnostics

    upstream = engine_client("elasticsearch", url)
    wait_for_documents(upstream, events_index, len(events))
    documents = all_sources(upstream, events_index)
    tagged = [document for document in documents if "rule" in document]
    untagged = [document for document in documents if "rule" not in document]
    assert len(tagged) == 1
    assert tagged[0]["rule"]["id"] == [DEFAULT_RULE_ID]
    assert tagged[0]["rule"]["ruleset"] == "sigma"
    assert tagged[0]["threat"]["technique"]["subtechnique"]["id"] == ["T1546.003"]
    assert tagged[0]["tags"] == ["sigma"]
    # The real events have no rule, threat or tags fields of their own.
    untouched = {key: value for key, value in tagged[0].items() if key not in ("rule", "threat", "tags")}
    assert untouched == events[-1]
    assert sorted(map(canonical, untagged)) == sorted(map(canonical, events[:-1]))

    assert count_documents(upstream, alerts_index) == 1
    alert = all_sources(upstream, alerts_index)[0]
    assert alert["rule"]["id"] == DEFAULT_RULE_ID
    assert alert["event"]["kind"] == "alert"
