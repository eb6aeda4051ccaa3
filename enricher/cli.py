"""Command line: ``enricher serve``, ``enricher scan`` and ``enricher setup``."""

from __future__ import annotations

import argparse
import asyncio
import gzip
import logging
import logging.config
import os
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, BinaryIO

import orjson

from enricher import __version__
from enricher.config import Settings, SettingsError
from enricher.dashboards.importer import DashboardsError, install_dashboards
from enricher.decode import BodyError, Decoded, decode_body, decode_ndjson
from enricher.logs import logging_config
from enricher.pipeline import BatchResult, Pipeline, build_detector, build_sink
from enricher.rules.fieldmap import FieldMappingError
from enricher.rules.loader import PlaceholderConfigError, load_placeholders, load_rules
from enricher.rules.logsource import LogsourceConfigError, LogsourceTable
from enricher.sinks.base import SinkUnavailable, WriteResult
from enricher.sinks.cluster import ClusterConfigError, ClusterSink

logger = logging.getLogger("enricher")

SCAN_BATCH_EVENTS = 1000


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    _export_flags(args)
    try:
        settings = Settings.from_env()
    except SettingsError as error:
        print(f"enricher: {error}", file=sys.stderr)
        return 2
    logging.config.dictConfig(logging_config(settings.log_level, settings.log_format == "json"))
    try:
        return args.handler(args, settings)
    except (ClusterConfigError, SettingsError, FieldMappingError, LogsourceConfigError, PlaceholderConfigError) as error:
        print(f"enricher: {error}", file=sys.stderr)
        return 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="enricher",
        description="Evaluate Sigma rules on Windows process events and write an alert per match.",
    )
    parser.add_argument("--version", action="version", version=f"enricher {__version__}")
    commands = parser.add_subparsers(dest="command")

    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--rules",
        action="append",
        metavar="PATH",
        help="Sigma rule file or folder (searched recursively); repeat for more. "
        "Without it the bundled default rule loads. Env: ENRICHER_RULES (paths joined by ':').",
    )
    common.add_argument(
        "--default-rule",
        choices=("yes", "no"),
        help="also load the bundled default rule when --rules is given (default: only without --rules). "
        "Env: ENRICHER_DEFAULT_RULE.",
    )
    common.add_argument(
        "--field-mapping",
        action="append",
        metavar="FILE",
        help="extra Sigma field mapping YAML applied over the built-in one. Env: ENRICHER_FIELD_MAPPING.",
    )
    common.add_argument(
        "--placeholders",
        metavar="FILE",
        help="YAML with the values of %%name%% placeholders for the expand modifier. Env: ENRICHER_PLACEHOLDERS.",
    )
    common.add_argument(
        "--logsources",
        action="append",
        metavar="FILE",
        help="extra log-source conditions YAML, tried before the built-in table. Env: ENRICHER_LOGSOURCES.",
    )
    common.add_argument(
        "--no-logsource-gating",
        action="store_true",
        help="run every rule on every event, whatever its log source. Env: ENRICHER_LOGSOURCE_GATING=false.",
    )
    common.add_argument("--cluster-url", metavar="URL", help="Elasticsearch or OpenSearch URL. Env: ENRICHER_CLUSTER_URL.")
    common.add_argument("--alerts-index", metavar="NAME", help="alerts index or alias (default enricher-alerts). Env: ENRICHER_ALERTS_INDEX.")
    common.add_argument(
        "--log-level", choices=("debug", "info", "warning", "error"), help="log level (default info). Env: ENRICHER_LOG_LEVEL."
    )
    common.add_argument(
        "--log-format", choices=("text", "json"), help="log lines as text or one JSON object each. Env: ENRICHER_LOG_FORMAT."
    )

    serve = commands.add_parser("serve", parents=[common], help="run the HTTP service (POST /ingest)")
    serve.add_argument("--host", help="address to listen on (default 127.0.0.1). Env: ENRICHER_HOST.")
    serve.add_argument("--port", type=int, help="TCP port (default 8080). Env: ENRICHER_PORT.")
    serve.add_argument("--workers", type=int, help="uvicorn worker processes (default 1). Env: ENRICHER_WORKERS.")
    serve.add_argument("--alerts-file", metavar="PATH", help="NDJSON alert file when no cluster is set. Env: ENRICHER_ALERTS_FILE.")
    serve.set_defaults(handler=_serve)

    scan = commands.add_parser("scan", parents=[common], help="match events from files and write alerts")
    scan.add_argument("files", nargs="+", metavar="FILE", help="NDJSON or JSON array file, .gz allowed, - for stdin")
    scan.add_argument(
        "--output",
        metavar="PATH",
        help="alert NDJSON file, or - for stdout (default: the cluster when set, else ENRICHER_ALERTS_FILE)",
    )
    scan.set_defaults(handler=_scan)

    rules = commands.add_parser("rules", help="rule tooling")
    rules_commands = rules.add_subparsers(dest="rules_command", required=True)
    check = rules_commands.add_parser(
        "check",
        parents=[common],
        help="load rules and print, per file, loaded or rejected with the reason; exit 1 when any is rejected",
    )
    check.add_argument("paths", nargs="+", metavar="PATH", help="Sigma rule file or folder")
    check.set_defaults(handler=_rules_check)

    setup = commands.add_parser(
        "setup",
        parents=[common],
        help="install the lifecycle policy, alerts index template, first index and dashboards",
    )
    setup.add_argument(
        "--dashboards-url",
        metavar="URL",
        help="Kibana or OpenSearch Dashboards URL to import the saved objects into. Env: ENRICHER_DASHBOARDS_URL.",
    )
    setup.add_argument("--dry-run", action="store_true", help="print what would be done and change nothing")
    setup.set_defaults(handler=_setup)
    return parser


_FLAG_ENV = {
    "default_rule": "ENRICHER_DEFAULT_RULE",
    "cluster_url": "ENRICHER_CLUSTER_URL",
    "alerts_index": "ENRICHER_ALERTS_INDEX",
    "log_level": "ENRICHER_LOG_LEVEL",
    "log_format": "ENRICHER_LOG_FORMAT",
    "host": "ENRICHER_HOST",
    "port": "ENRICHER_PORT",
    "workers": "ENRICHER_WORKERS",
    "alerts_file": "ENRICHER_ALERTS_FILE",
    "dashboards_url": "ENRICHER_DASHBOARDS_URL",
}
_PATH_FLAG_ENV = {
    "rules": "ENRICHER_RULES",
    "field_mapping": "ENRICHER_FIELD_MAPPING",
    "logsources": "ENRICHER_LOGSOURCES",
}


def _export_flags(args: argparse.Namespace) -> None:
    """Write flags into the environment so uvicorn workers see the same settings."""
    for attribute, variable in _FLAG_ENV.items():
        value = getattr(args, attribute, None)
        if value is not None:
            os.environ[variable] = str(value)
    for attribute, variable in _PATH_FLAG_ENV.items():
        values = getattr(args, attribute, None)
        if values:
            os.environ[variable] = os.pathsep.join(str(Path(path).resolve()) for path in values)
    if getattr(args, "placeholders", None):
        os.environ["ENRICHER_PLACEHOLDERS"] = str(Path(args.placeholders).resolve())
    if getattr(args, "no_logsource_gating", False):
        os.environ["ENRICHER_LOGSOURCE_GATING"] = "false"


def _serve(args: argparse.Namespace, settings: Settings) -> int:
    import uvicorn

    # One worker runs the app in this process and keeps its metrics here;
    # several workers are separate processes that share a samples folder.
    cleanup = _prepare_metrics_dir() if settings.workers > 1 else None
    try:
        uvicorn.run(
            "enricher.api:create_app",
            factory=True,
            host=settings.host,
            port=settings.port,
            workers=settings.workers,
            log_level=settings.log_level,
            log_config=logging_config(settings.log_level, settings.log_format == "json"),
            # One line per request would flood the logs at any real rate;
            # /metrics has the request counts and latencies.
            access_log=False,
            # Logstash and Beats keep pooled connections open; a short idle timeout
            # makes them fail with connection resets mid-request.
            timeout_keep_alive=75,
        )
    finally:
        if cleanup is not None:
            cleanup()
    return 0


def _prepare_metrics_dir() -> Callable[[], None] | None:
    """Give the workers an empty folder for their Prometheus samples (multiprocess mode).

    ``ENRICHER_METRICS_DIR`` names it; otherwise a new temporary folder is
    made, and the returned function removes it. Samples of an earlier run
    are removed, so counters start at zero.
    """
    import shutil
    import tempfile

    from enricher.metrics import MULTIPROCESS_ENV

    folder = os.environ.get("ENRICHER_METRICS_DIR")
    if folder:
        path = Path(folder)
        path.mkdir(parents=True, exist_ok=True)
        for stale in path.glob("*.db"):
            stale.unlink()
        os.environ[MULTIPROCESS_ENV] = str(path)
        return None

    temporary = Path(tempfile.mkdtemp(prefix="enricher-metrics-"))
    os.environ[MULTIPROCESS_ENV] = str(temporary)
    return lambda: shutil.rmtree(temporary, ignore_errors=True)


class _StdoutSink:
    """Alert NDJSON on standard output, for ``scan --output -``."""

    description = "stdout"

    def __init__(self, stream: BinaryIO) -> None:
        self.stream = stream
        self._seen: set[str] = set()

    async def start(self) -> None:
        return None

    async def write(self, alerts: list[dict[str, Any]]) -> WriteResult:
        result = WriteResult()
        for alert in alerts:
            if alert["event"]["id"] in self._seen:
                result.duplicates += 1
                continue
            self._seen.add(alert["event"]["id"])
            self.stream.write(orjson.dumps(alert) + b"\n")
            result.written += 1
        self.stream.flush()
        return result

    async def write_dead_letters(self, records: list[dict[str, Any]]) -> None:
        for record in records:
            print(f"enricher: dead letter {record['enricher']['position']}: {record['error']['message']}", file=sys.stderr)

    async def ping(self) -> bool:
        return True

    async def close(self) -> None:
        return None


def _scan(args: argparse.Namespace, settings: Settings) -> int:
    detector = build_detector(settings)
    if not detector.rules:
        print("enricher: no rule loaded; see the messages above", file=sys.stderr)
        return 2

    if args.output == "-":
        sink = _StdoutSink(sys.stdout.buffer)
    elif args.output:
        output = Path(args.output)
        sink = build_sink(Settings(alerts_file=output, dead_letter_file=output.with_name(output.name + ".dead-letter")))
    else:
        sink = build_sink(settings)

    pipeline = Pipeline(detector, sink)
    started = time.monotonic()
    progress = ScanProgress(sys.stderr, enabled=sys.stderr.isatty())
    try:
        total = asyncio.run(_scan_files(pipeline, args.files, progress))
    except SinkUnavailable as error:
        print(f"enricher: alert sink {sink.description} failed: {error}", file=sys.stderr)
        return 1
    except (OSError, BodyError) as error:
        print(f"enricher: {error}", file=sys.stderr)
        return 1
    finally:
        progress.finish()

    elapsed = time.monotonic() - started
    titles = {rule.id: rule.title for rule in detector.rules}
    for rule_id, count in sorted(total.matches_by_rule.items(), key=lambda item: (-item[1], item[0])):
        print(f"  {count:>8}  {rule_id}  {titles.get(rule_id, '')}", file=sys.stderr)
    print(
        f"enricher scan: {total.events} events, {total.matches} matches, {total.alerts_written} alerts written "
        f"({total.alerts_duplicate} already present), {total.dead_letters} dead letters, "
        f"{len(detector.rules)} rules, {elapsed:.2f} s",
        file=sys.stderr,
    )
    return 0


class ScanProgress:
    """A one-line progress display on a terminal: events, events/s, alerts. Silent when not a terminal."""

    def __init__(self, stream: Any, enabled: bool, interval_seconds: float = 0.2) -> None:
        self.stream = stream
        self.enabled = enabled
        self.interval = interval_seconds
        self.started = time.monotonic()
        self.last_shown = 0.0
        self.visible = False

    def update(self, total: BatchResult) -> None:
        now = time.monotonic()
        if not self.enabled or now - self.last_shown < self.interval:
            return
        self.last_shown = now
        rate = total.events / max(now - self.started, 1e-9)
        self.stream.write(
            f"\r{total.events:,} events  {rate:,.0f} events/s  {total.matches:,} matches  {total.alerts_written:,} alerts "
        )
        self.stream.flush()
        self.visible = True

    def finish(self) -> None:
        if self.visible:
            self.stream.write("\r\033[K")
            self.stream.flush()


async def _scan_files(pipeline: Pipeline, files: list[str], progress: ScanProgress) -> BatchResult:
    total = BatchResult()
    if not await pipeline.start_sink():
        raise SinkUnavailable(f"cannot start {pipeline.sink.description}")
    try:
        for name in files:
            for decoded in _read_events(name):
                for start in range(0, max(len(decoded.events), 1), SCAN_BATCH_EVENTS):
                    batch = decoded.events[start : start + SCAN_BATCH_EVENTS]
                    letters = decoded.dead_letters if start == 0 else []
                    total.add(await pipeline.process(batch, letters, source=f"scan {name}"))
                    progress.update(total)
    finally:
        await pipeline.sink.close()
    return total


def _read_events(name: str) -> Iterator[Decoded]:
    """Yield decoded chunks of a file: NDJSON streams in blocks, a JSON array loads whole."""
    stream = sys.stdin.buffer if name == "-" else open(name, "rb")
    try:
        head = stream.read(2)
        if head[:2] == b"\x1f\x8b":
            stream = gzip.GzipFile(fileobj=_Prefixed(head, stream))
            head = stream.read(2)
        first = head.lstrip()[:1]
        if first == b"[":
            yield decode_body(head + stream.read())
            return
        pending = head
        while True:
            block = stream.read(4 * 1024 * 1024)
            if not block:
                break
            pending += block
            cut = pending.rfind(b"\n")
            if cut < 0:
                continue
            yield decode_ndjson(pending[: cut + 1])
            pending = pending[cut + 1 :]
        if pending.strip():
            yield decode_ndjson(pending)
    finally:
        if stream is not sys.stdin.buffer:
            stream.close()


class _Prefixed:
    """A readable that returns ``prefix`` before the rest of ``stream``."""

    def __init__(self, prefix: bytes, stream: BinaryIO) -> None:
        self.prefix = prefix
        self.stream = stream

    def read(self, size: int = -1) -> bytes:
        if self.prefix:
            if size < 0:
                data, self.prefix = self.prefix + self.stream.read(), b""
                return data
            data, self.prefix = self.prefix[:size], self.prefix[size:]
            if len(data) < size:
                data += self.stream.read(size - len(data))
            return data
        return self.stream.read(size)

    def close(self) -> None:
        self.stream.close()


def _rules_check(args: argparse.Namespace, settings: Settings) -> int:
    placeholders = load_placeholders(settings.placeholders)
    rule_set = load_rules(args.paths, include_default=False, placeholders=placeholders)
    logsources = LogsourceTable.load(settings.logsource_files) if settings.logsource_gating else None
    loaded_by_file: dict[str, list[str]] = {}
    for rule in rule_set.rules:
        loaded_by_file.setdefault(rule.source, []).append(rule.id)
    errors_by_file: dict[str, list[str]] = {}
    for error in rule_set.errors:
        label = f"{error.rule_id}: {error.reason}" if error.rule_id else error.reason
        errors_by_file.setdefault(error.source, []).append(label)

    for source in rule_set.sources + [error.source for error in rule_set.errors if error.source not in rule_set.sources]:
        for reason in errors_by_file.pop(source, []):
            print(f"rejected  {source}  {reason}")
        for rule_id in loaded_by_file.pop(source, []):
            print(f"loaded    {source}  {rule_id}")
    if logsources is not None:
        detector_rules = [rule for rule in rule_set.rules if logsources.gate_for(rule.logsource) is None]
        for rule in detector_rules:
            print(f"note      {rule.source}  {rule.id}: no log-source condition for {rule.logsource}; runs on every event")
    print(f"{len(rule_set.rules)} loaded, {len(rule_set.errors)} rejected", file=sys.stderr)
    return 1 if rule_set.errors else 0


def _setup(args: argparse.Namespace, settings: Settings) -> int:
    if settings.cluster is None:
        print("enricher setup: no cluster configured; set --cluster-url or ENRICHER_CLUSTER_URL", file=sys.stderr)
        return 2

    async def install() -> dict[str, str]:
        sink = ClusterSink(settings.cluster)
        try:
            await sink.connect()
            return await sink.install(dry_run=args.dry_run)
        finally:
            await sink.close()

    try:
        report = asyncio.run(install())
    except SinkUnavailable as error:
        print(f"enricher setup: {error}", file=sys.stderr)
        return 1
    if settings.dashboards is not None:
        try:
            report["dashboards"] = install_dashboards(settings.dashboards, dry_run=args.dry_run)
        except DashboardsError as error:
            print(f"enricher setup: {error}", file=sys.stderr)
            return 1
    else:
        report["dashboards"] = "skipped: no dashboards URL (--dashboards-url or ENRICHER_DASHBOARDS_URL)"
    for item, state in report.items():
        print(f"{item}: {state}")
    return 0
