"""FastAPI application: the HTTP routes only translate wire formats into the shared pipeline."""

from __future__ import annotations

import asyncio
import gc
import logging
import signal
from contextlib import asynccontextmanager
from typing import Any

import orjson

from fastapi import FastAPI, Request
from fastapi.responses import Response

from enricher import __version__, metrics
from enricher.config import Settings
from enricher.decode import BodyError, BodyTooLarge, Decoded, UnsupportedEncoding, decode_body, inflate
from enricher.facade import Upstream, facade_router
from enricher.pipeline import Pipeline, build_detector, build_sink
from enricher.sinks.base import SinkUnavailable
from enricher.tags import apply_tags, tags_for

logger = logging.getLogger(__name__)


class JSONResponse(Response):
    """Compact JSON encoded with orjson; some shippers parse responses as text and expect no spaces."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the app; with no settings they come from ``ENRICHER_*`` variables."""
    settings = settings or Settings.from_env()

    upstream = Upstream(settings.upstream) if settings.upstream is not None else None

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        detector = build_detector(settings)
        sink = build_sink(settings)
        app.state.pipeline = pipeline = Pipeline(detector, sink)
        # Serve even when the sink is down. Requests get 503 until it is back,
        # and Logstash and Beats retry them.
        await pipeline.start_sink()
        logger.info(
            "enricher %s started: %d rules, sink %s", __version__, len(detector.rules), sink.description
        )
        _install_reload_signal(app, settings)
        # The rules and their compiled closures live as long as the process:
        # moving them out of the collector's reach keeps each collection as
        # cheap as the per-request objects it has to look at.
        gc.freeze()
        yield
        await sink.close()
        if upstream is not None:
            await upstream.close()
        logger.info("enricher stopped")

    app = FastAPI(title="enricher", version=__version__, lifespan=lifespan, default_response_class=JSONResponse)
    app.state.settings = settings
    app.add_middleware(metrics.RequestTimer)

    @app.post("/ingest")
    async def ingest(request: Request) -> Response:
        """Accept Logstash ``http`` output bodies: json, json_batch or NDJSON, optionally gzip."""
        pipeline: Pipeline = request.app.state.pipeline
        decoded = await _read_events(request, settings)
        if isinstance(decoded, Response):
            return decoded

        try:
            result = await pipeline.process(decoded.events, decoded.dead_letters, source="ingest")
        except SinkUnavailable as error:
            logger.warning("returning 503 for a batch of %d events: %s", len(decoded.events), error)
            return _unavailable(settings, str(error))

        content: dict[str, Any] = result.as_dict()
        if decoded.dead_letters:
            content["dead_letter_positions"] = [letter.position for letter in decoded.dead_letters]
            logger.warning("kept %d invalid elements of a batch as dead letters", len(decoded.dead_letters))
        return JSONResponse(content)

    @app.post("/enrich")
    async def enrich(request: Request, mode: str = "tags") -> Response:
        """Return the Sigma tags of each event, or with ``mode=event`` the tagged events; store alerts as /ingest does.

        One JSON object in gives one object out; an array (or NDJSON) gives an
        array in the same order. An event without a match gets ``{}`` as tags.
        """
        if mode not in ("tags", "event"):
            return JSONResponse({"error": f"invalid mode {mode!r}; use tags or event"}, status_code=400)
        pipeline: Pipeline = request.app.state.pipeline
        decoded = await _read_events(request, settings)
        if isinstance(decoded, Response):
            return decoded
        if decoded.dead_letters:
            positions = ", ".join(letter.position for letter in decoded.dead_letters)
            return JSONResponse({"error": f"not JSON objects: {positions}"}, status_code=400)

        evaluation = pipeline.evaluate(decoded.events, route="enrich")
        try:
            await pipeline.store(evaluation, [], source="enrich")
        except SinkUnavailable as error:
            logger.warning("returning 503 for /enrich with %d events: %s", len(decoded.events), error)
            return _unavailable(settings, str(error))

        outputs = []
        for event, rules in zip(decoded.events, evaluation.matches):
            tags = tags_for(rules)
            outputs.append(apply_tags(event, tags) if mode == "event" else tags)
        return JSONResponse(outputs[0] if decoded.single_object else outputs)

    @app.get("/rules")
    async def list_rules(request: Request) -> Response:
        """List the loaded rules with the matches this worker process has counted since it loaded them."""
        detector = request.app.state.pipeline.detector
        rules = [
            {
                "id": rule.id,
                "title": rule.title,
                "level": rule.level,
                "status": rule.status,
                "logsource": rule.logsource,
                "source": rule.source,
                "matches": detector.match_counts.get(rule.id, 0),
            }
            for rule in detector.rules
        ]
        errors = [
            {"source": error.source, "rule_id": error.rule_id, "reason": error.reason}
            for error in detector.rule_set.errors
        ]
        return JSONResponse({"rules": rules, "rejected": errors})

    @app.post("/rules/reload")
    async def reload_rules(request: Request) -> Response:
        """Load the configured rules again and swap them in; on failure the current rules stay."""
        outcome = await reload_detector(request.app, settings)
        return JSONResponse(outcome, status_code=200 if outcome["reloaded"] else 422)

    @app.get("/metrics")
    async def prometheus_metrics() -> Response:
        """Prometheus metrics of all worker processes."""
        content, content_type = metrics.render()
        return Response(content=content, media_type=content_type)

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz")
    async def readyz(request: Request) -> Response:
        pipeline: Pipeline = request.app.state.pipeline
        rules = len(pipeline.detector.rules)
        sink_ready = await pipeline.start_sink() and await pipeline.sink.ping()
        ready = rules > 0 and sink_ready
        content = {
            "status": "ready" if ready else "not ready",
            "rules": rules,
            "sink": pipeline.sink.description,
            "sink_reachable": sink_ready,
        }
        return JSONResponse(content, status_code=200 if ready else 503)

    # Last: the pass-through catches every path the routes above do not.
    app.include_router(facade_router(upstream, settings.max_body_bytes, settings.retry_after_seconds))
    return app


async def reload_detector(app: FastAPI, settings: Settings) -> dict[str, Any]:
    """Build a new rule set and swap it in atomically, unless it fails to load.

    A reload fails when loading raises, when no rule loads, or when it
    rejects a rule the current set did not reject. The current set then
    stays in use and the errors are returned.
    """
    pipeline: Pipeline = app.state.pipeline
    current = pipeline.detector
    try:
        candidate = await asyncio.to_thread(build_detector, settings)
    except (ValueError, OSError) as error:
        logger.error("rule reload failed, keeping %d rules: %s", len(current.rules), error)
        return {"reloaded": False, "rules": len(current.rules), "errors": [str(error)]}

    known = {(error.source, error.rule_id, error.reason) for error in current.rule_set.errors}
    new_errors = [error for error in candidate.rule_set.errors if (error.source, error.rule_id, error.reason) not in known]
    if not candidate.rules or new_errors:
        reasons = [f"{error.source}: {error.reason}" for error in new_errors] or ["no rule loaded"]
        logger.error("rule reload failed, keeping %d rules: %s", len(current.rules), "; ".join(reasons))
        return {"reloaded": False, "rules": len(current.rules), "errors": reasons}

    # One attribute assignment: a batch in flight keeps the detector it started with.
    pipeline.detector = candidate
    logger.info("rules reloaded: %d rules, %d rejected", len(candidate.rules), len(candidate.rule_set.errors))
    return {"reloaded": True, "rules": len(candidate.rules), "errors": [error.reason for error in candidate.rule_set.errors]}


def _install_reload_signal(app: FastAPI, settings: Settings) -> None:
    """Reload rules on SIGHUP in this process."""
    loop = asyncio.get_running_loop()

    def on_hangup() -> None:
        logger.info("SIGHUP received: reloading rules")
        loop.create_task(reload_detector(app, settings))

    try:
        loop.add_signal_handler(signal.SIGHUP, on_hangup)
    except (NotImplementedError, RuntimeError, ValueError) as error:
        # Not the main thread (the test client) or a platform without SIGHUP.
        logger.debug("SIGHUP reload not installed: %s", error)


async def _read_events(request: Request, settings: Settings) -> Decoded | Response:
    """Read, inflate and decode a request body; return the error response when that fails."""
    body = await request.body()
    try:
        data = inflate(body, request.headers.get("content-encoding"), settings.max_body_bytes)
        return decode_body(data)
    except UnsupportedEncoding as error:
        return JSONResponse({"error": str(error)}, status_code=415)
    except BodyTooLarge as error:
        return JSONResponse({"error": str(error)}, status_code=413)
    except BodyError as error:
        return JSONResponse({"error": str(error), "position": error.position}, status_code=400)


def _unavailable(settings: Settings, message: str) -> Response:
    return JSONResponse(
        {"error": message},
        status_code=503,
        headers={"Retry-After": str(settings.retry_after_seconds)},
    )
