"""Checks on what a shipper sent through the ``_bulk`` facade, read back from the upstream cluster.

Each engine is read with its own official Python client, so the checks do not
depend on enricher's HTTP code.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import orjson

DEFAULT_RULE_ID = "797011dc-44f4-4e6f-9f10-a8ceefbe566b"


def engine_client(name: str, url: str) -> Any:
    """Return ``opensearchpy.OpenSearch`` or ``elasticsearch.Elasticsearch`` for the engine ``name``."""
    if name == "opensearch":
        from opensearchpy import OpenSearch

        return OpenSearch(hosts=[url])
    from elasticsearch import Elasticsearch

    return Elasticsearch(url)


def count_documents(client: Any, index: str) -> int:
    """Refresh ``index`` and return its document count, which is 0 while the index does not exist."""
    if not client.indices.exists(index=index):
        return 0
    client.indices.refresh(index=index)
    return client.count(index=index)["count"]


def wait_for_documents(
    client: Any, index: str, expected: int, timeout: float = 60, diagnostics: Callable[[], str] = str
) -> None:
    """Poll until ``index`` contains ``expected`` documents, and fail with ``diagnostics()`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    found = count_documents(client, index)
    while found < expected and time.monotonic() < deadline:
        time.sleep(0.5)
        found = count_documents(client, index)
    assert found == expected, f"{index} contains {found} documents after {timeout} s, expected {expected}\n{diagnostics()}"


def all_sources(client: Any, index: str) -> list[dict[str, Any]]:
    """Return the ``_source`` of every document in ``index``, up to 1000."""
    client.indices.refresh(index=index)
    response = client.search(index=index, body={"query": {"match_all": {}}, "size": 1000})
    return [hit["_source"] for hit in response["hits"]["hits"]]


def canonical(document: dict[str, Any]) -> bytes:
    """Return ``document`` as JSON with sorted keys, for comparing documents regardless of key order."""
    return orjson.dumps(document, option=orjson.OPT_SORT_KEYS)
