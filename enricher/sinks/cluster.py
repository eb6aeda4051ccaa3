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
    retention_days: int = 90

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
    that serves ``GET /`` (its integ-test distribution) return 405 there, so
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


def lifecycle_policy(kind: str, alias: str, retention_days: int) -> dict[str, Any]:
    """Roll the alerts index over at 30 days or 50 GB per primary shard; delete it after the retention."""
    if kind == "ilm":
        return {
            "policy": {
                "_meta": {"managed_by": "enricher"},
                "phases": {
                    "hot": {"actions": {"rollover": {"max_age": "30d", "max_primary_shard_size": "50gb"}}},
                    "delete": {"min_age": f"{retention_days}d", "actions": {"delete": {}}},
                },
            }
        }
    return {
        "policy": {
            "description": "enricher alerts: roll over, then delete after the retention",
            "default_state": "hot",
            "states": [
                {
                    "name": "hot",
                    "actions": [{"rollover": {"min_index_age": "30d", "min_primary_shard_size": "50gb"}}],
                    "transitions": [{"state_name": "delete", "conditions": {"min_index_age": f"{retention_days}d"}}],
                },
                {"name": "delete", "actions": [{"delete": {}}], "transitions": []},
            ],
            "ism_template": [{"index_patterns": [f"{alias}-*"], "priority": 100}],
        }
    }


def _policy_matches(kind: str, current: Any, name: str, policy: dict[str, Any]) -> bool:
    if kind == "ilm":
        stored = current.get(name, {}).get("policy", {})
        return stored.get("phases") == policy["policy"]["phases"]
    stored = current.get("policy", {})
    return stored.get("states") == policy["policy"]["states"] and stored.get("default_state") == "hot"


class ClusterSink:
    """Bulk-creates alerts with their deterministic ids; a 409 conflict is a duplicate, not an error."""

    def __init__(self, settings: ClusterSettings) -> None:
        self.settings = settings
        self.description = f"cluster {settings.display_url} index {settings.alerts_index}"
        self.engine: EngineInfo | None = None
        self._client: Any = None
        self._bulk: Any = None
        self.install_report: dict[str, str] = {}

    async def connect(self) -> None:
        """Probe the engine and open the client matching it."""
        if self._client is None:
            self.engine = await probe_engine(self.settings)
            self._client, self._bulk = self._make_client(self.engine)
            logger.info(
                "connected to %s %s at %s", self.engine.distribution, self.engine.version, self.settings.display_url
            )

    async def start(self) -> None:
        await self.connect()
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

    async def install(self, dry_run: bool = False) -> dict[str, str]:
        """Install the lifecycle policy, the alerts template and the first alerts index; return what changed.

        Idempotent: what already matches is left alone and reported as
        unchanged. A lifecycle policy is installed where the engine offers
        one (ILM on Elasticsearch, ISM on OpenSearch) and skipped with the
        reason where the endpoint is missing. With ``dry_run`` nothing is
        written and the report describes what would be done.
        """
        assert self.engine is not None
        index = self.settings.alerts_index
        report: dict[str, str] = {}
        try:
            lifecycle = await self._lifecycle_kind()
            report["lifecycle"] = await self._install_lifecycle(lifecycle, dry_run)
            report["template"] = await self._install_template(lifecycle, dry_run)
            if await self._client.indices.exists_alias(name=index) or await self._client.indices.exists(index=index):
                report["index"] = "unchanged"
            elif dry_run:
                report["index"] = f"would create {index}-000001 behind the write alias {index}"
            else:
                await self._create_first_index(index)
                report["index"] = "created"
        except _unavailable_errors() as error:
            raise SinkUnavailable(f"cannot install the alerts template on {self.settings.display_url}: {error}") from error
        if not dry_run:
            logger.info(
                "alerts lifecycle %s, template %s, index %s on %s",
                report["lifecycle"],
                report["template"],
                report["index"],
                self.settings.display_url,
            )
        return report

    async def _request(self, method: str, path: str, body: dict[str, Any] | None = None) -> tuple[int, Any]:
        """Send a request with the engine's client; return (status, body) for 2xx and 4xx responses."""
        assert self.engine is not None
        if self.engine.distribution == "opensearch":
            from opensearchpy.exceptions import TransportError as OpenSearchError

            try:
                return 200, await self._client.transport.perform_request(method, path, body=body)
            except OpenSearchError as error:
                if isinstance(error.status_code, int) and 400 <= error.status_code < 500:
                    return error.status_code, error.info
                raise
        import elastic_transport

        headers = {"accept": "application/json"}
        if body is not None:
            headers["content-type"] = "application/json"
        try:
            response = await self._client.perform_request(method, path, headers=headers, body=body)
        except elastic_transport.ApiError as error:
            if 400 <= error.meta.status < 500:
                return error.meta.status, error.body
            raise
        return response.meta.status, response.body

    async def _lifecycle_kind(self) -> str | None:
        """Return "ilm" or "ism" when the engine serves that policy API, else None."""
        assert self.engine is not None
        path = "/_plugins/_ism/policies" if self.engine.distribution == "opensearch" else "/_ilm/policy"
        status, _body = await self._request("GET", path)
        if status == 200:
            return "ism" if self.engine.distribution == "opensearch" else "ilm"
        return None

    async def _install_lifecycle(self, kind: str | None, dry_run: bool) -> str:
        assert self.engine is not None
        name = self.settings.alerts_index
        if kind is None:
            endpoint = "ISM (/_plugins/_ism)" if self.engine.distribution == "opensearch" else "ILM (/_ilm)"
            return f"skipped: {self.settings.display_url} has no {endpoint} endpoint"
        policy = lifecycle_policy(kind, name, self.settings.retention_days)
        path = f"/_plugins/_ism/policies/{name}" if kind == "ism" else f"/_ilm/policy/{name}"
        status, current = await self._request("GET", path)
        if status == 200 and _policy_matches(kind, current, name, policy):
            return f"unchanged ({kind.upper()} policy {name})"
        if dry_run:
            return f"would install {kind.upper()} policy {name}"
        if kind == "ism" and status == 200:
            # ISM replaces a policy only with its current sequence numbers.
            seq_no, primary_term = current["_seq_no"], current["_primary_term"]
            path = f"{path}?if_seq_no={seq_no}&if_primary_term={primary_term}"
        status, answer = await self._request("PUT", path, policy)
        if status >= 300:
            raise SinkUnavailable(f"installing the {kind.upper()} policy {name} failed: {answer}")
        return f"installed ({kind.upper()} policy {name})"

    async def _install_template(self, lifecycle: str | None, dry_run: bool) -> str:
        assert self.engine is not None
        index = self.settings.alerts_index
        # The template is named after the alerts index, so deployments with
        # different index names keep separate templates.
        template = load_template(self.engine.distribution, index, lifecycle)
        status, current = await self._request("GET", f"/_index_template/{index}")
        if status == 200 and current["index_templates"][0]["index_template"].get("_meta") == template["_meta"]:
            return "unchanged"
        if dry_run:
            return f"would {'install' if status != 200 else 'update'} index template {index}"
        status_put, answer = await self._request("PUT", f"/_index_template/{index}", template)
        if status_put >= 300:
            raise SinkUnavailable(f"installing the index template {index} failed: {answer}")
        return "installed" if status != 200 else "updated"

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
