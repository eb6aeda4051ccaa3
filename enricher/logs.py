"""Logging set-up: plain text or one JSON object per line, for enricher and uvicorn alike."""

from __future__ import annotations

import logging
from datetime import datetime, timezone
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import orjson

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class JsonFormatter(logging.Formatter):
    """One ECS-shaped JSON object per record: ``@timestamp``, ``log.level``, ``log.logger``, ``message``."""

    def format(self, record: logging.LogRecord) -> str:
        document: dict[str, Any] = {
            "@timestamp": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "log.level": record.levelname.lower(),
            "log.logger": record.name,
            "message": record.getMessage(),
            "process.pid": record.process,
        }
        if record.exc_info:
            document["error.stack_trace"] = self.formatException(record.exc_info)
        return orjson.dumps(document).decode()


def logging_config(level: str, json_lines: bool) -> dict[str, Any]:
    """Return a ``logging.config.dictConfig`` dict; uvicorn applies it in every worker."""
    formatter: dict[str, Any] = {"()": JsonFormatter} if json_lines else {"format": TEXT_FORMAT}
    handler = {"class": "logging.StreamHandler", "formatter": "default", "stream": "ext://sys.stderr"}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"default": formatter},
        "handlers": {"default": handler},
        "root": {"handlers": ["default"], "level": level.upper()},
        "loggers": {
            # uvicorn's loggers propagate to the root handler.
            **{name: {"handlers": [], "propagate": True} for name in ("uvicorn", "uvicorn.error", "uvicorn.access")},
            # The cluster clients log every request, and the expected 404s of
            # existence checks as warnings. enricher logs the failures that
            # matter itself, with the ids involved.
            **{name: {"level": "ERROR"} for name in ("opensearch", "elastic_transport", "elasticsearch")},
        },
    }


def redact_url(url: str) -> str:
    """Return ``url`` without a user name or password, for logs and messages."""
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, parts.query, parts.fragment))
