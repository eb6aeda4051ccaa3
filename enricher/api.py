"""FastAPI application: the HTTP routes only translate wire formats into the shared pipeline."""

from __future__ import annotations

import logging
from contextlib import asynccontextmanager
from typing import Any

import orjson

from fastapi import FastAPI, Request
from fastapi.responses import Response

from enricher import __version__
from enricher.config import Settings
from enricher.decode import BodyError, BodyTooLarge, UnsupportedEncoding, decode_body, inflate
from enricher.pipeline import Pipeline, build_detector, build_sink
from enricher.sinks.base import SinkUnavailable

logger = logging.getLogger(__name__)


class JSONResponse(Response):
    """Compact JSON encoded with orjson; some shippers parse responses as text and expect no spaces."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the app; with no settings they come from ``ENRICHER_*`` variables."""
    settings = settings or Settings.from_env()

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        detector = build_detector(settings)
        sink = build_sink(settings)
        app.state.pipeline = Pipeline(detector, sink)
        app.state.sink_started = False
        try:
            await sink.start()
            app.state.sink_started = True
        except SinkUnavailable as error:
            # Serve anyway: /ingest answers 503 until the sink is back, and
            # Logstash retries those requests.
            logger.error("alert sink %s is not available at start: %s", sink.description, error)
        logger.info(
            "enricher %s started: %d rules, sink %s", __version__, len(detector.rules), sink.description
        )
        yield
        await sink.close()
        logger.info("enricher stopped")

    app = FastAPI(title="enricher", version=__version__, lifespan=lifespan, default_response_class=JSONResponse)
    app.state.settings = settings

    @app.post("/ingest")
    async def ingest(request: Request) -> Response:
        """Accept Logstash ``http`` output bodies: json, json_batch or NDJSON, optionally gzip."""
        pipeline: Pipeline = request.app.state.pipeline
        body = await request.body()
        try:
            data = inflate(body, request.headers.get("content-encoding"), settings.max_body_bytes)
            decoded = decode_body(data)
        except UnsupportedEncoding as error:
            return JSONResponse({"error": str(error)}, status_code=415)
        except BodyTooLarge as error:
            return JSONResponse({"error": str(error)}, status_code=413)
        except BodyError as error:
            return JSONResponse({"error": str(error), "position": error.position}, status_code=400)

        if not await _ensure_sink(request.app):
            return _unavailable(settings, f"alert sink {pipeline.sink.description} is not available")
        try:
            result = await pipeline.process(decoded.events, decoded.dead_letters, source="ingest")
        except SinkUnavailable as error:
            logger.warning("answering 503 to a batch of %d events: %s", len(decoded.events), error)
            return _unavailable(settings, str(error))

        content: dict[str, Any] = result.as_dict()
        if decoded.dead_letters:
            content["dead_letter_positions"] = [letter.position for letter in decoded.dead_letters]
            logger.warning("kept %d invalid elements of a batch as dead letters", len(decoded.dead_letters))
        return JSONResponse(content)

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz")
    async def readyz(request: Request) -> Response:
        pipeline: Pipeline = request.app.state.pipeline
        rules = len(pipeline.detector.rules)
        sink_ready = await _ensure_sink(request.app) and await pipeline.sink.ping()
        ready = rules > 0 and sink_ready
        content = {
            "status": "ready" if ready else "not ready",
            "rules": rules,
            "sink": pipeline.sink.description,
            "sink_reachable": sink_ready,
        }
        return JSONResponse(content, status_code=200 if ready else 503)

    return app


async def _ensure_sink(app: FastAPI) -> bool:
    """Start the sink if it failed at start-up; return whether it is started."""
    if app.state.sink_started:
        return True
    try:
        await app.state.pipeline.sink.start()
    except SinkUnavailable as error:
        logger.debug("alert sink still not available: %s", error)
        return False
    app.state.sink_started = True
    logger.info("alert sink %s is available", app.state.pipeline.sink.description)
    return True


def _unavailable(settings: Settings, message: str) -> Response:
    return JSONResponse(
        {"error": message},
        status_code=503,
        headers={"Retry-After": str(settings.retry_after_seconds)},
    )
