"""Alerts indexed into Elasticsearch (``elasticsearch`` client) or OpenSearch (``opensearch-py``).

The engine is probed with ``GET /`` at start: ``version.distribution ==
"opensearch"`` selects opensearch-py, anything else the Elasticsearch client,
whose major version must equal the server's (elasticsearch-py 9 cannot talk
to Elasticsearch 8, and no elasticsearch-py release talks to OpenSearch).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any

import orjson

from enricher.logs import redact_url
from enricher.sinks.base import SinkUnavailable, WriteResult
from enricher.sinks.templates import load_template

logger = logging.getLogger(__name__)


class ClusterConfigError(ValueError):
    """A cluster setting that cannot work, such as a client of the wrong major version."""


@dataclass(frozen=True)
class ClusterSettings:
    url: str
    alerts_index: str = "enricher-alerts"
    dead_letter_index: str = "enricher-dead-letter"
    username: str | None = None
    password: str | None = None
    api_key: str | None = None
    ca_certs: str | None = None
    verify_certs: bool = True
    request_timeout: float = 30.0
    max_retries: int = 3

    @property
    def display_url(self) -> str:
        """The URL without credentials, for logs and messages."""
        return redact_url(self.url)

    def client_options(self) -> dict[str, Any]:
        options: dict[str, Any] = {"request_timeout": self.request_timeout}
        if self.url.startswith("https"):
            options["verify_certs"] = self.verify_certs
            if self.ca_certs:
                options["ca_certs"] = self.ca_certs
        return options


@dataclass(frozen=True)
class EngineInfo:
    distribution: str
    version: str

    @property
    def major(self) -> int:
        return int(self.version.split(".", 1)[0])


def _unavailable_errors() -> tuple[type[BaseException], ...]:
    import elastic_transport
    import opensearchpy.exceptions

    return (
        elastic_transport.TransportError,
        elastic_transport.ApiError,
        opensearchpy.exceptions.TransportError,
        opensearchpy.exceptions.ConnectionError,
        OSError,
        asyncio.TimeoutError,
    )


async def probe_engine(settings: ClusterSettings) -> EngineInfo:
    """Read the engine's distribution and version with opensearch-py, which does no product check.

    ``GET /`` names the distribution. Elasticsearch builds without the module
    that serves ``GET /`` (its integ-test distribution) answer 405 there, so
    the version then comes from ``GET /_nodes/_local``; OpenSearch always
    serves ``GET /``.
    """
    from opensearchpy import AsyncOpenSearch
    from opensearchpy.exceptions import TransportError as OpenSearchTransportError

    options = settings.client_options()
    auth: dict[str, Any] = {}
    if settings.username:
        auth["http_auth"] = (settings.username, settings.password or "")
    headers = {"Authorization": f"ApiKey {settings.api_key}"} if settings.api_key else None
    client = AsyncOpenSearch(
        hosts=[settings.url],
        timeout=options.pop("request_timeout"),
        headers=headers,
        **auth,
        **options,
    )
    try:
        try:
            info = await client.info()
        except OpenSearchTransportError as error:
            if error.status_code not in (404, 405):
                raise
            nodes = await client.transport.perform_request(
                "GET", "/_nodes/_local", params={"filter_path": "nodes.*.version"}
            )
            version = next(iter(nodes["nodes"].values()))["version"]
            return EngineInfo(distribution="elasticsearch", version=version)
    except _unavailable_errors() as error:
        raise SinkUnavailable(f"cannot reach {settings.display_url}: {error}") from error
    finally:
        await client.close()
    version_info = info.get("version", {})
    return EngineInfo(
        distribution=version_info.get("distribution", "elasticsearch"), version=version_info.get("number", "0")
    )


class ClusterSink:
    """Bulk-creates alerts with their deterministic ids; a 409 conflict is a duplicate, not an error."""

    def __init__(self, settings: ClusterSettings) -> None:
        self.settings = settings
        self.description = f"cluster {settings.display_url} index {settings.alerts_index}"
        self.engine: EngineInfo | None = None
        self._client: Any = None
        self._bulk: Any = None
        self.install_report: dict[str, str] = {}

    async def start(self) -> None:
        if self._client is None:
            self.engine = await probe_engine(self.settings)
            self._client, self._bulk = self._make_client(self.engine)
            logger.info(
                "connected to %s %s at %s", self.engine.distribution, self.engine.version, self.settings.display_url
            )
        self.install_report = await self.install()

    def _make_client(self, engine: EngineInfo) -> tuple[Any, Any]:
        settings = self.settings
        options = settings.client_options()
        if engine.distribution == "opensearch":
            from opensearchpy import AsyncOpenSearch
            from opensearchpy.helpers import async_streaming_bulk

            auth: dict[str, Any] = {}
            if settings.username:
                auth["http_auth"] = (settings.username, settings.password or "")
            headers = {"Authorization": f"ApiKey {settings.api_key}"} if settings.api_key else None
            client = AsyncOpenSearch(
                hosts=[settings.url], timeout=options.pop("request_timeout"), headers=headers, **auth, **options
            )
            return client, async_streaming_bulk

        import elasticsearch
        from elasticsearch import AsyncElasticsearch
        from elasticsearch.helpers import async_streaming_bulk

        client_major = int(elasticsearch.__versionstr__.split(".", 1)[0])
        if client_major != engine.major:
            raise ClusterConfigError(
                f"Elasticsearch {engine.version} at {settings.display_url} needs the elasticsearch client "
                f"{engine.major}.x, but {elasticsearch.__versionstr__} is installed: "
                f"pip install 'elasticsearch[async]>={engine.major},<{engine.major + 1}'"
            )
        auth = {}
        if settings.api_key:
            auth["api_key"] = settings.api_key
        elif settings.username:
            auth["basic_auth"] = (settings.username, settings.password or "")
        client = AsyncElasticsearch(hosts=[settings.url], **auth, **options)
        return client, async_streaming_bulk

    async def install(self) -> dict[str, str]:
        """Install the alerts template and the first alerts index; return what changed.

        Idempotent: a template with the same ``version`` is left alone, and an
        existing alias or index of the alerts name is kept.
        """
        assert self.engine is not None
        client = self._client
        index = self.settings.alerts_index
        # The template is named after the alerts index, so deployments with
        # different index names keep separate templates.
        template_name = index
        template = load_template(self.engine.distribution, index)
        report: dict[str, str] = {}
        try:
            current = None
            if await client.indices.exists_index_template(name=template_name):
                response = await client.indices.get_index_template(name=template_name)
                current = response["index_templates"][0]["index_template"]
            if current is not None and current.get("version") == template["version"] and current.get(
                "index_patterns"
            ) == template["index_patterns"]:
                report["template"] = "unchanged"
            else:
                await client.indices.put_index_template(name=template_name, body=template)
                report["template"] = "installed" if current is None else "updated"

            if await client.indices.exists_alias(name=index) or await client.indices.exists(index=index):
                report["index"] = "unchanged"
            else:
                await self._create_first_index(index)
                report["index"] = "created"
        except _unavailable_errors() as error:
            raise SinkUnavailable(f"cannot install the alerts template on {self.settings.display_url}: {error}") from error
        logger.info("alerts template %s, index %s on %s", report["template"], report["index"], self.settings.display_url)
        return report

    async def _create_first_index(self, alias: str) -> None:
        # A concrete first index behind a write alias lets lifecycle policies
        # roll the alerts over later without changing the name writers use.
        first = f"{alias}-000001"
        body = {"aliases": {alias: {"is_write_index": True}}}
        try:
            await self._client.indices.create(index=first, body=body)
        except _unavailable_errors() as error:
            if "resource_already_exists_exception" not in str(error):
                raise
            # Another worker created it first.

    async def write(self, alerts: list[dict[str, Any]]) -> WriteResult:
        if not alerts:
            return WriteResult()
        actions = [
            {"_op_type": "create", "_index": self.settings.alerts_index, "_id": alert["event"]["id"], "_source": alert}
            for alert in alerts
        ]
        result = await self._bulk_create(actions)
        return result

    async def _bulk_create(self, actions: list[dict[str, Any]]) -> WriteResult:
        result = WriteResult()
        rejected: list[dict[str, Any]] = []
        try:
            async for ok, item in self._bulk(
                self._client,
                actions,
                chunk_size=500,
                max_chunk_bytes=10 * 1024 * 1024,
                raise_on_error=False,
                raise_on_exception=True,
                max_retries=self.settings.max_retries,
                initial_backoff=1,
                max_backoff=10,
            ):
                detail = next(iter(item.values()))
                if ok:
                    result.written += 1
                elif detail.get("status") == 409:
                    result.duplicates += 1
                else:
                    rejected.append(detail)
        except _unavailable_errors() as error:
            raise SinkUnavailable(f"bulk write to {self.settings.display_url} failed: {error}") from error

        if any(detail.get("status") == 429 for detail in rejected):
            raise SinkUnavailable(f"{self.settings.display_url} rejected alerts with 429 after {self.settings.max_retries} retries")
        if any(detail.get("status", 0) >= 500 for detail in rejected):
            raise SinkUnavailable(f"{self.settings.display_url} failed to store alerts with a server error")
        result.failed = len(rejected)
        result.errors = [
            {"id": detail.get("_id"), "status": detail.get("status"), "error": detail.get("error")} for detail in rejected
        ]
        for error in result.errors:
            logger.error("alert %s rejected by %s: %s", error["id"], self.settings.display_url, error["error"])
        return result

    async def write_dead_letters(self, records: list[dict[str, Any]]) -> None:
        if not records:
            return
        actions = [{"_op_type": "index", "_index": self.settings.dead_letter_index, "_source": record} for record in records]
        result = await self._bulk_create(actions)
        if result.failed:
            raise SinkUnavailable(
                f"{result.failed} dead-letter records were rejected by {self.settings.display_url}: "
                f"{orjson.dumps(result.errors[:1]).decode()}"
            )

    async def ping(self) -> bool:
        if self._client is None:
            return False
        # Cluster health rather than HEAD /, which not every build serves.
        try:
            await self._client.cluster.health()
        except _unavailable_errors():
            return False
        return True

    async def close(self) -> None:
        if self._client is not None:
            await self._client.close()
            self._client = None
