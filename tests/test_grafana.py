"""The Grafana dashboard queries only metrics the service exports."""

from __future__ import annotations

import json
import re
from pathlib import Path

from prometheus_client import Counter, Histogram

from enricher import metrics

DASHBOARD = Path(__file__).resolve().parents[1] / "deploy" / "grafana" / "enricher.json"


def exported_names() -> set[str]:
    names = set()
    for value in vars(metrics).values():
        if not isinstance(value, (Counter, Histogram)):
            continue
        for family in value.describe():
            for suffix in ("_total", "_bucket", "_count", "_sum", ""):
                names.add(family.name + suffix)
    return names


def test_dashboard_queries_exported_metrics() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    expressions = [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]
    assert expressions
    used = {name for expression in expressions for name in re.findall(r"enricher_[a-z_]+", expression)}
    assert used <= exported_names()
    assert {"enricher_events_received_total", "enricher_rule_matches_total", "enricher_request_duration_seconds_bucket"} <= used


def test_dashboard_panel_ids_unique() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids))
