"""An Elasticsearch ``_bulk`` endpoint in front of one upstream cluster, for Beats and other shippers.

Shippers with an Elasticsearch output (Winlogbeat, Logstash's elasticsearch
output, Fluent Bit, rsyslog's omelasticsearch, Vector) point at enricher
instead of the cluster. ``index`` and ``create`` documents are matched
against the rules; matching ones are forwarded with their Sigma tags added,
all others byte for byte. Alerts are stored first, then the request goes to
the upstream, whose response (status, body, product header) goes back to the
sender, so the sender's own retry logic keeps working. Every other request
is passed through. The sender's ``Authorization`` goes to the upstream with
its request, so the cluster's own security decides.
"""

from __future__ import annotations

import logging
import ssl
from dataclasses import dataclass
from typing import Any

import httpx
import orjson
from fastapi import APIRouter, Request
from fastapi.responses import Response

from enricher.config import UpstreamSettings
from enricher.decode import BodyError, BodyTooLarge, UnsupportedEncoding, inflate
from enricher.logs import redact_url
from enricher.pipeline import Pipeline
from enricher.sinks.base import SinkUnavailable
from enricher.tags import apply_tags, tags_for

logger = logging.getLogger(__name__)

# Headers that describe one hop or the body as enricher received it; httpx
# sets them again for the forwarded request and the returned response.
_HOP_HEADERS = frozenset(
    {
        "host",
        "content-length",
        "content-encoding",
        "transfer-encoding",
        "connection",
        "keep-alive",
        "proxy-authorization",
        "te",
        "trailer",
        "upgrade",
        "accept-encoding",
    }
)
_SOURCE_ACTIONS = frozenset({"index", "create"})
_ACTIONS_WITH_BODY = frozenset({"index", "create", "update"})
PASS_THROUGH_METHODS = ["GET", "HEAD", "PUT", "POST", "DELETE", "PATCH"]


class Upstream:
    """The cluster behind the facade, reached with httpx; TLS verified against the configured CA."""

    def __init__(self, settings: UpstreamSettings) -> None:
        self.settings = settings
        verify: bool | ssl.SSLContext = settings.verify_certs
        if settings.verify_certs and settings.ca_certs:
            verify = ssl.create_default_context(cafile=settings.ca_certs)
        self.client = httpx.AsyncClient(
            base_url=settings.url.rstrip("/"),
            verify=verify,
            timeout=settings.timeout_seconds,
            limits=httpx.Limits(max_connections=64, max_keepalive_connections=32),
        )

    async def send(self, request: Request, body: bytes, path: str) -> httpx.Response:
        """Send the sender's request to the upstream. Raises ``httpx.TransportError`` when unreachable."""
        headers = [
            (name, value) for name, value in request.headers.items() if name.lower() not in _HOP_HEADERS
        ]
        return await self.client.request(
            request.method,
            path,
            params=list(request.query_params.multi_items()),
            headers=headers,
            content=body if body else None,
        )

    async def close(self) -> None:
        await self.client.aclose()


def upstream_response(response: httpx.Response) -> Response:
    headers = {name: value for name, value in response.headers.items() if name.lower() not in _HOP_HEADERS}
    return Response(content=response.content, status_code=response.status_code, headers=headers)


def error_response(status: int, error_type: str, reason: str, retry_after: int | None = None) -> Response:
    """Build an error response in Elasticsearch's shape, because senders parse ``error.type`` and ``status``."""
    body = orjson.dumps({"error": {"type": error_type, "reason": reason}, "status": status})
    headers = {"X-Elastic-Product": "Elasticsearch"}
    if retry_after is not None:
        headers["Retry-After"] = str(retry_after)
    return Response(content=body, status_code=status, media_type="application/json", headers=headers)


@dataclass
class BulkOperation:
    """One action line of a bulk body and its source line, as received."""

    action: bytes
    source: bytes | None
    op_type: str
    document: dict[str, Any] | None = None


class BulkFormatError(ValueError):
    """A bulk body that Elasticsearch would reject as a whole with 400."""


def parse_bulk(body: bytes) -> list[BulkOperation]:
    """Split an NDJSON bulk body into operations; sources of index/create are decoded when they parse.

    A source that is not a JSON object is left for the upstream to reject
    with its own per-item error.
    """
    if body and not body.endswith(b"\n"):
        raise BulkFormatError("The bulk request must be terminated by a newline [\\n]")
    lines = [line.rstrip(b"\r") for line in body.split(b"\n")]
    if lines and lines[-1] == b"":
        lines.pop()
    operations = []
    index = 0
    while index < len(lines):
        action = lines[index]
        index += 1
        if not action.strip():
            continue
        try:
            parsed = orjson.loads(action)
        except orjson.JSONDecodeError as error:
            raise BulkFormatError(f"Malformed action/metadata line [{index}]: {error.msg}") from error
        if not isinstance(parsed, dict) or len(parsed) != 1:
            raise BulkFormatError(f"Malformed action/metadata line [{index}], expected a single action")
        op_type = next(iter(parsed))
        source = None
        if op_type in _ACTIONS_WITH_BODY:
            if index >= len(lines):
                raise BulkFormatError(f"Action line [{index}] has no source line")
            source = lines[index]
            index += 1
        operation = BulkOperation(action=action, source=source, op_type=op_type)
        if op_type in _SOURCE_ACTIONS and source is not None:
            try:
                document = orjson.loads(source)
            except orjson.JSONDecodeError:
                document = None
            if isinstance(document, dict):
                operation.document = document
        operations.append(operation)
    return operations


def build_bulk_body(operations: list[BulkOperation]) -> bytes:
    parts = []
    for operation in operations:
        parts.append(operation.action)
        parts.append(b"\n")
        if operation.source is not None:
            parts.append(operation.source)
            parts.append(b"\n")
    return b"".join(parts)


def facade_router(upstream: Upstream | None, max_body_bytes: int, retry_after: int) -> APIRouter:
    """Routes for ``/_bulk``, ``/{index}/_bulk`` and the pass-through; add it after every other route."""
    router = APIRouter()

    async def bulk(request: Request, path: str) -> Response:
        if upstream is None:
            return error_response(404, "no_upstream", "the _bulk facade needs ENRICHER_UPSTREAM_URL")
        pipeline: Pipeline = request.app.state.pipeline
        raw = await request.body()
        try:
            body = inflate(raw, request.headers.get("content-encoding"), max_body_bytes)
            operations = parse_bulk(body)
        except BodyTooLarge as error:
            return error_response(413, "content_too_long_exception", str(error))
        except UnsupportedEncoding as error:
            return error_response(415, "illegal_argument_exception", str(error))
        except (BodyError, BulkFormatError) as error:
            return error_response(400, "illegal_argument_exception", str(error))

        documents = [operation.document for operation in operations if operation.document is not None]
        evaluation = pipeline.evaluate(documents, route="bulk")
        try:
            # Alerts first: when the sink is down, the sender retries the whole
            # request and nothing reached the upstream twice.
            await pipeline.store(evaluation, [], source="bulk")
        except SinkUnavailable as error:
            logger.warning("returning 503 for a bulk request of %d documents: %s", len(documents), error)
            return error_response(503, "unavailable_shards_exception", f"alert sink unavailable: {error}", retry_after)

        matched = iter(evaluation.matches)
        for operation in operations:
            if operation.document is None:
                continue
            rules = next(matched)
            if rules:
                operation.source = orjson.dumps(apply_tags(operation.document, tags_for(rules)))

        try:
            response = await upstream.send(request, build_bulk_body(operations), path)
        except httpx.HTTPError as error:
            logger.warning("upstream %s unreachable for a bulk request: %s", redact_url(upstream.settings.url), error)
            return error_response(503, "unavailable_shards_exception", f"upstream unreachable: {error}", retry_after)
        return upstream_response(response)

    @router.post("/_bulk")
    @router.put("/_bulk")
    async def bulk_all(request: Request) -> Response:
        return await bulk(request, "/_bulk")

    @router.post("/{index}/_bulk")
    @router.put("/{index}/_bulk")
    async def bulk_index(request: Request, index: str) -> Response:
        return await bulk(request, f"/{index}/_bulk")

    @router.api_route("/", methods=PASS_THROUGH_METHODS)
    @router.api_route("/{path:path}", methods=PASS_THROUGH_METHODS)
    async def pass_through(request: Request, path: str = "") -> Response:
        if upstream is None:
            return error_response(404, "not_found", f"no route for {request.method} /{path}")
        body = await request.body()
        try:
            body = inflate(body, request.headers.get("content-encoding"), max_body_bytes)
        except BodyTooLarge as error:
            return error_response(413, "content_too_long_exception", str(error))
        except BodyError as error:
            return error_response(400, "illegal_argument_exception", str(error))
        try:
            response = await upstream.send(request, body, "/" + path)
        except httpx.HTTPError as error:
            logger.warning("upstream %s unreachable for %s /%s: %s", redact_url(upstream.settings.url), request.method, path, error)
            return error_response(503, "unavailable_shards_exception", f"upstream unreachable: {error}", retry_after)
        return upstream_response(response)

    return router
