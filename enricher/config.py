"""Settings from ``ENRICHER_*`` environment variables; command-line flags override them.

Every worker process of ``enricher serve`` reads the same environment, so the
CLI writes its flags into the environment before uvicorn starts the workers.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from enricher.dashboards.importer import DashboardsSettings
from enricher.sinks.cluster import ClusterSettings

DEFAULT_MAX_BODY_BYTES = 100 * 1024 * 1024


@dataclass(frozen=True)
class UpstreamSettings:
    """The cluster behind the ``_bulk`` facade."""

    url: str
    ca_certs: str | None = None
    verify_certs: bool = True
    timeout_seconds: float = 60.0


class SettingsError(ValueError):
    """An environment variable or flag with an invalid value."""


@dataclass(frozen=True)
class Settings:
    rules: tuple[Path, ...] = ()
    include_default_rule: bool | None = None
    field_mappings: tuple[Path, ...] = ()
    placeholders: Path | None = None
    logsource_gating: bool = True
    logsource_files: tuple[Path, ...] = ()
    alerts_file: Path = Path("enricher-alerts.ndjson")
    dead_letter_file: Path = Path("enricher-dead-letter.ndjson")
    cluster: ClusterSettings | None = None
    upstream: UpstreamSettings | None = None
    dashboards: DashboardsSettings | None = None
    host: str = "127.0.0.1"
    port: int = 8080
    workers: int = 1
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    retry_after_seconds: int = 5
    log_level: str = "info"
    log_format: str = "text"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ

        def text(name: str, default: str | None = None) -> str | None:
            value = env.get(name)
            return value if value not in (None, "") else default

        def integer(name: str, default: int, minimum: int = 0) -> int:
            raw = text(name)
            if raw is None:
                return default
            try:
                value = int(raw)
            except ValueError:
                raise SettingsError(f"{name}={raw!r} is not a whole number") from None
            if value < minimum:
                raise SettingsError(f"{name}={value} is below the minimum of {minimum}")
            return value

        def flag(name: str, default: bool | None = None) -> bool | None:
            raw = text(name)
            if raw is None:
                return default
            if raw.lower() in ("1", "true", "yes", "on"):
                return True
            if raw.lower() in ("0", "false", "no", "off"):
                return False
            raise SettingsError(f"{name}={raw!r} is not a boolean; use true or false")

        def choice(name: str, allowed: tuple[str, ...], default: str) -> str:
            value = (text(name) or default).lower()
            if value not in allowed:
                raise SettingsError(f"{name}={value!r} is not one of {', '.join(allowed)}")
            return value

        def paths(name: str) -> tuple[Path, ...]:
            raw = text(name)
            if raw is None:
                return ()
            return tuple(Path(part) for part in raw.split(os.pathsep) if part)

        upstream = None
        upstream_url = text("ENRICHER_UPSTREAM_URL")
        if upstream_url is not None:
            upstream = UpstreamSettings(
                url=upstream_url,
                ca_certs=text("ENRICHER_UPSTREAM_CA_CERTS"),
                verify_certs=flag("ENRICHER_UPSTREAM_VERIFY_CERTS", True),
                timeout_seconds=float(integer("ENRICHER_UPSTREAM_TIMEOUT", 60, minimum=1)),
            )

        cluster = None
        # Without a cluster of its own, enricher writes alerts to the
        # facade's upstream, with its own credentials.
        url = text("ENRICHER_CLUSTER_URL") or upstream_url
        if url is not None:
            ca_certs = text("ENRICHER_CLUSTER_CA_CERTS")
            if ca_certs is None and upstream is not None and url == upstream_url:
                ca_certs = upstream.ca_certs
            cluster = ClusterSettings(
                url=url,
                alerts_index=text("ENRICHER_ALERTS_INDEX", "enricher-alerts"),
                dead_letter_index=text("ENRICHER_DEAD_LETTER_INDEX", "enricher-dead-letter"),
                username=text("ENRICHER_CLUSTER_USERNAME"),
                password=text("ENRICHER_CLUSTER_PASSWORD"),
                api_key=text("ENRICHER_CLUSTER_API_KEY"),
                ca_certs=ca_certs,
                verify_certs=flag("ENRICHER_CLUSTER_VERIFY_CERTS", True),
                request_timeout=float(integer("ENRICHER_CLUSTER_TIMEOUT", 30, minimum=1)),
                retention_days=integer("ENRICHER_ALERTS_RETENTION_DAYS", 90, minimum=1),
            )

        dashboards = None
        dashboards_url = text("ENRICHER_DASHBOARDS_URL")
        if dashboards_url is not None:
            dashboards = DashboardsSettings(
                url=dashboards_url,
                username=text("ENRICHER_DASHBOARDS_USERNAME") or text("ENRICHER_CLUSTER_USERNAME"),
                password=text("ENRICHER_DASHBOARDS_PASSWORD") or text("ENRICHER_CLUSTER_PASSWORD"),
                api_key=text("ENRICHER_DASHBOARDS_API_KEY"),
                verify_certs=flag("ENRICHER_DASHBOARDS_VERIFY_CERTS", True),
            )

        return cls(
            rules=paths("ENRICHER_RULES"),
            include_default_rule=flag("ENRICHER_DEFAULT_RULE"),
            field_mappings=paths("ENRICHER_FIELD_MAPPING"),
            placeholders=Path(text("ENRICHER_PLACEHOLDERS")) if text("ENRICHER_PLACEHOLDERS") else None,
            logsource_gating=flag("ENRICHER_LOGSOURCE_GATING") is not False,
            logsource_files=paths("ENRICHER_LOGSOURCES"),
            alerts_file=Path(text("ENRICHER_ALERTS_FILE", "enricher-alerts.ndjson")),
            dead_letter_file=Path(text("ENRICHER_DEAD_LETTER_FILE", "enricher-dead-letter.ndjson")),
            cluster=cluster,
            upstream=upstream,
            dashboards=dashboards,
            host=text("ENRICHER_HOST", "127.0.0.1"),
            port=integer("ENRICHER_PORT", 8080, minimum=0),
            workers=integer("ENRICHER_WORKERS", 1, minimum=1),
            max_body_bytes=integer("ENRICHER_MAX_BODY_BYTES", DEFAULT_MAX_BODY_BYTES, minimum=1024),
            retry_after_seconds=integer("ENRICHER_RETRY_AFTER", 5, minimum=1),
            log_level=text("ENRICHER_LOG_LEVEL", "info").lower(),
            log_format=choice("ENRICHER_LOG_FORMAT", ("text", "json"), "text"),
        )
