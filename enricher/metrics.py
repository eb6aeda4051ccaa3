"""Prometheus metrics, correct across uvicorn worker processes.

``enricher serve`` sets ``PROMETHEUS_MULTIPROC_DIR`` (a fresh folder, or
``ENRICHER_METRICS_DIR``) before the workers start, so every worker writes
its samples there and ``/metrics``, served by any worker, sums them all.
Without that variable (``enricher scan``, tests) the metrics live in the
process.
"""

from __future__ import annotations

import os
import time
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client import REGISTRY as PROCESS_REGISTRY

MULTIPROCESS_ENV = "PROMETHEUS_MULTIPROC_DIR"

EVENTS_RECEIVED = Counter("enricher_events_received", "Events decoded from requests and files", ["route"])
EVENTS_MATCHED = Counter("enricher_events_matched", "Events that matched at least one rule", ["route"])
RULE_MATCHES = Counter("enricher_rule_matches", "Matches per Sigma rule", ["rule_id", "rule_name"])
ALERTS_WRITTEN = Counter("enricher_alerts_written", "Alerts the sink stored")
ALERTS_DUPLICATE = Counter("enricher_alerts_duplicate", "Alerts the sink already had (replays and retries)")
ALERTS_FAILED = Counter("enricher_alerts_failed", "Alerts the sink rejected; they are kept as dead letters")
DEAD_LETTERS = Counter("enricher_dead_letters", "Input elements that were not JSON objects, kept as dead letters", ["route"])
SINK_RETRIES = Counter("enricher_sink_retries", "Requests answered 503 because the alert sink was unavailable")
REQUEST_SECONDS = Histogram(
    "enricher_request_duration_seconds",
    "Time from request to response",
    ["route", "method", "status"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)


class RequestTimer:
    """ASGI middleware that observes each HTTP request's duration by route template, method and status."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = [500]

        async def send_with_status(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_with_status)
        finally:
            route = scope.get("route")
            # Route templates keep the label set small; pass-through paths
            # are many, so they share one label.
            path = getattr(route, "path", "unmatched")
            if "{path:path}" in path:
                path = "pass-through"
            REQUEST_SECONDS.labels(path, scope.get("method", ""), str(status[0])).observe(time.perf_counter() - started)


def render() -> tuple[bytes, str]:
    """Return the exposition text and its content type, summed over worker processes when there are several."""
    if os.environ.get(MULTIPROCESS_ENV):
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(PROCESS_REGISTRY), CONTENT_TYPE_LATEST
