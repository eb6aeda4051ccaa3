"""GET /rules, POST /rules/reload and SIGHUP swap the rule set atomically."""

from __future__ import annotations

import shutil
import signal
import time
from pathlib import Path

import httpx
import orjson

from conftest import true_positive_variants
from enricher.rules.loader import bundled_rule_path

WHOAMI_RULE = """
title: Whoami Run
id: 5f3b7d0e-8f4a-4c1b-9d2e-1a2b3c4d5e6f
status: test
author: enricher tests
logsource: {category: process_creation, product: windows}
detection:
    selection:
        Image|endswith: '\\\\whoami.exe'
    condition: selection
level: low
"""


def rules_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "rules"
    folder.mkdir()
    shutil.copy(bundled_rule_path(), folder / "default.yml")
    return folder


def rule_ids(server_url: str) -> list[str]:
    return sorted(rule["id"] for rule in httpx.get(f"{server_url}/rules", timeout=30).json()["rules"])


def test_rules_lists_match_counts(start_server, tmp_path: Path, exchange_events) -> None:
    server = start_server({"ENRICHER_RULES": str(rules_folder(tmp_path))})
    _name, _form, positive = true_positive_variants(exchange_events)[0]
    httpx.post(f"{server.url}/ingest", content=orjson.dumps([positive, positive]), timeout=30)
    listing = httpx.get(f"{server.url}/rules", timeout=30).json()
    (rule,) = listing["rules"]
    assert rule["id"] == "797011dc-44f4-4e6f-9f10-a8ceefbe566b"
    assert rule["matches"] == 2
    assert rule["level"] == "critical"
    assert listing["rejected"] == []


def test_reload_endpoint_adds_rule(start_server, tmp_path: Path) -> None:
    folder = rules_folder(tmp_path)
    server = start_server({"ENRICHER_RULES": str(folder)})
    assert rule_ids(server.url) == ["797011dc-44f4-4e6f-9f10-a8ceefbe566b"]

    (folder / "whoami.yml").write_text(WHOAMI_RULE)
    response = httpx.post(f"{server.url}/rules/reload", timeout=30)

    assert response.status_code == 200
    assert response.json()["reloaded"] is True
    assert rule_ids(server.url) == ["5f3b7d0e-8f4a-4c1b-9d2e-1a2b3c4d5e6f", "797011dc-44f4-4e6f-9f10-a8ceefbe566b"]
    event = {"process": {"executable": "C:\\\\Windows\\\\System32\\\\whoami.exe"}}
    assert httpx.post(f"{server.url}/ingest", content=orjson.dumps(event), timeout=30).json()["matches"] == 1


def test_failed_reload_keeps_rules(start_server, tmp_path: Path) -> None:
    folder = rules_folder(tmp_path)
    server = start_server({"ENRICHER_RULES": str(folder)})
    (folder / "broken.yml").write_text("title: broken\\nid: 1\\nlogsource: {}\\ndetection:\\n  condition: nothing\\n")

    response = httpx.post(f"{server.url}/rules/reload", timeout=30)

    assert response.status_code == 422
    assert response.json()["reloaded"] is False
    assert "broken.yml" in response.json()["errors"][0]
    assert rule_ids(server.url) == ["797011dc-44f4-4e6f-9f10-a8ceefbe566b"]


def test_sighup_reloads_rules(start_server, tmp_path: Path) -> None:
    folder = rules_folder(tmp_path)
    server = start_server({"ENRICHER_RULES": str(folder)})
    (folder / "whoami.yml").write_text(WHOAMI_RULE)

    server.process.send_signal(signal.SIGHUP)

    deadline = time.monotonic() + 20
    while len(rule_ids(server.url)) < 2 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert rule_ids(server.url) == ["5f3b7d0e-8f4a-4c1b-9d2e-1a2b3c4d5e6f", "797011dc-44f4-4e6f-9f10-a8ceefbe566b"]
    assert server.process.poll() is None
