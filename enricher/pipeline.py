"""The one path every input takes: decoded events -> match -> alert documents -> sink.

The HTTP routes and ``enricher scan`` only translate their wire format into a
list of events and call ``Pipeline.process``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import orjson

from enricher import metrics
from enricher.alerts import AlertBuilder
from enricher.config import Settings
from enricher.decode import DeadLetter
from enricher.detector import Detector
from enricher.rules.fieldmap import FieldMapping
from enricher.rules.loader import CompiledRule, load_placeholders, load_rules
from enricher.rules.logsource import LogsourceTable
from enricher.sinks.base import AlertSink, SinkUnavailable
from enricher.sinks.cluster import ClusterSink
from enricher.sinks.file import FileSink

logger = logging.getLogger(__name__)


@dataclass
class BatchResult:
    events: int = 0
    matches: int = 0
    alerts_written: int = 0
    alerts_duplicate: int = 0
    alerts_failed: int = 0
    dead_letters: int = 0
    matches_by_rule: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "events": self.events,
            "matches": self.matches,
            "alerts_written": self.alerts_written,
            "alerts_duplicate": self.alerts_duplicate,
            "alerts_failed": self.alerts_failed,
            "dead_letters": self.dead_letters,
        }

    def add(self, other: BatchResult) -> None:
        self.events += other.events
        self.matches += other.matches
        self.alerts_written += other.alerts_written
        self.alerts_duplicate += other.alerts_duplicate
        self.alerts_failed += other.alerts_failed
        self.dead_letters += other.dead_letters
        for rule_id, count in other.matches_by_rule.items():
            self.matches_by_rule[rule_id] = self.matches_by_rule.get(rule_id, 0) + count


class Pipeline:
    def __init__(self, detector: Detector, sink: AlertSink) -> None:
        self.detector = detector
        self.sink = sink
        self.sink_started = False
        self._sink_failures = 0
        self.builder = AlertBuilder(detector.mapping)

    async def start_sink(self) -> bool:
        """Start the sink unless it is running; return whether it runs.

        The first failure is logged as a warning, repeats at debug level
        (requests retry it as they come), and the recovery at info.
        """
        if self.sink_started:
            return True
        try:
            await self.sink.start()
        except SinkUnavailable as error:
            self._sink_failures += 1
            level = logging.WARNING if self._sink_failures == 1 else logging.DEBUG
            logger.log(level, "alert sink %s is not available (attempt %d): %s", self.sink.description, self._sink_failures, error)
            return False
        self._sink_failures = 0
        self.sink_started = True
        logger.info("alert sink %s is available", self.sink.description)
        return True

    def evaluate(self, events: list[Mapping[str, Any]], route: str = "ingest") -> Evaluation:
        """Match a batch and build its alerts; CPU only, no I/O. ``route`` labels the metrics."""
        result = BatchResult(events=len(events))
        alerts: list[dict[str, Any]] = []
        now = datetime.now(timezone.utc)
        detector = self.detector
        if self.builder.mapping is not detector.mapping:
            # A rule reload may bring a new field mapping.
            self.builder = AlertBuilder(detector.mapping)
        build = self.builder.build
        matches = detector.match_batch(events)
        for event, rules in zip(events, matches):
            for rule in rules:
                alerts.append(build(event, rule, now))
                result.matches_by_rule[rule.id] = result.matches_by_rule.get(rule.id, 0) + 1
        result.matches = len(alerts)
        detector.match_counts.update(result.matches_by_rule)
        metrics.EVENTS_RECEIVED.labels(route).inc(len(events))
        matched_events = sum(1 for rules in matches if rules)
        if matched_events:
            metrics.EVENTS_MATCHED.labels(route).inc(matched_events)
            titles = {rule.id: rule.title for rules in matches for rule in rules}
            for rule_id, count in result.matches_by_rule.items():
                metrics.RULE_MATCHES.labels(rule_id, titles[rule_id]).inc(count)
        return Evaluation(matches=matches, alerts=alerts, result=result)

    async def process(
        self,
        events: list[Mapping[str, Any]],
        dead_letters: list[DeadLetter] = (),
        source: str = "ingest",
    ) -> BatchResult:
        """Match, build and store one batch; returns only after the sink took everything.

        Raises ``SinkUnavailable`` when the sink cannot take the batch, so the
        caller can tell the sender to retry the whole batch. Alert ids are
        deterministic, so that retry adds no second alert.
        """
        evaluation = self.evaluate(events, route=source.split(" ", 1)[0])
        await self.store(evaluation, dead_letters, source)
        return evaluation.result

    async def store(self, evaluation: Evaluation, dead_letters: list[DeadLetter], source: str) -> None:
        """Write an evaluation's alerts and the batch's dead letters. Raises ``SinkUnavailable``."""
        try:
            await self._store(evaluation, dead_letters, source)
        except SinkUnavailable:
            metrics.SINK_RETRIES.inc()
            raise

    async def _store(self, evaluation: Evaluation, dead_letters: list[DeadLetter], source: str) -> None:
        result = evaluation.result
        alerts = evaluation.alerts
        records = [dead_letter_record(letter, source) for letter in dead_letters]
        if (alerts or records) and not await self.start_sink():
            raise SinkUnavailable(f"alert sink {self.sink.description} is not available")
        if alerts:
            written = await self.sink.write(alerts)
            result.alerts_written = written.written
            result.alerts_duplicate = written.duplicates
            result.alerts_failed = written.failed
            metrics.ALERTS_WRITTEN.inc(written.written)
            metrics.ALERTS_DUPLICATE.inc(written.duplicates)
            metrics.ALERTS_FAILED.inc(written.failed)
            if written.errors:
                failed_ids = {error["id"] for error in written.errors}
                records.extend(
                    rejected_alert_record(alert, written.errors, source)
                    for alert in alerts
                    if alert["event"]["id"] in failed_ids
                )
        if records:
            await self.sink.write_dead_letters(records)
        result.dead_letters = len(dead_letters)
        if dead_letters:
            metrics.DEAD_LETTERS.labels(source.split(" ", 1)[0]).inc(len(dead_letters))


@dataclass
class Evaluation:
    """The rules each event matched, in batch order, and the alerts built from them."""

    matches: list[list[CompiledRule]]
    alerts: list[dict[str, Any]]
    result: BatchResult


def dead_letter_record(letter: DeadLetter, source: str) -> dict[str, Any]:
    return {
        "@timestamp": datetime.now(timezone.utc).isoformat().replace("+00:00", "Z"),
        "event": {"kind": "pipeline_error", "original": letter.raw},
        "error": {"message": letter.reason, "type": "invalid_input"},
        "enricher": {"input": source, "position": letter.position},
    }


def rejected_alert_record(alert: dict[str, Any], errors: list[dict[str, Any]], source: str) -> dict[str, Any]:
    error = next(item for item in errors if item["id"] == alert["event"]["id"])
    return {
        "@timestamp": datetime.now(timezone.utc).isoformat().replace("+00:00", "Z"),
        "event": {"kind": "pipeline_error", "original": orjson.dumps(alert).decode()},
        "error": {"message": str(error.get("error")), "type": "alert_rejected"},
        "enricher": {"input": source, "position": f"alert {alert['event']['id']}"},
    }


def build_detector(settings: Settings) -> Detector:
    """Load the field mapping, log sources, placeholders and rules the settings name.

    Raises ``FieldMappingError``, ``LogsourceConfigError`` or
    ``PlaceholderConfigError`` for a configuration file that cannot be used.
    """
    mapping = FieldMapping.load(settings.field_mappings)
    logsources = LogsourceTable.load(settings.logsource_files) if settings.logsource_gating else None
    placeholders = load_placeholders(settings.placeholders)
    rule_set = load_rules(settings.rules, settings.include_default_rule, placeholders)
    return Detector(rule_set, mapping, logsources)


def build_sink(settings: Settings) -> AlertSink:
    if settings.cluster is not None:
        return ClusterSink(settings.cluster)
    return FileSink(settings.alerts_file, settings.dead_letter_file)
