"""Install the bundled saved objects into Kibana or OpenSearch Dashboards through the saved-objects API."""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from typing import Any

import httpx
import orjson

SAVED_OBJECTS_FILE = "alerts.ndjson"

# Kibana requires kbn-xsrf and OpenSearch Dashboards osd-xsrf on writes; each
# ignores the other's header, so both are sent.
XSRF_HEADERS = {"kbn-xsrf": "true", "osd-xsrf": "true"}


class DashboardsError(RuntimeError):
    """The dashboards server rejected or could not be reached for the import."""


@dataclass(frozen=True)
class DashboardsSettings:
    url: str
    username: str | None = None
    password: str | None = None
    api_key: str | None = None
    verify_certs: bool = True


def saved_objects() -> list[dict[str, Any]]:
    text = resources.files("enricher.dashboards").joinpath(SAVED_OBJECTS_FILE).read_bytes()
    return [orjson.loads(line) for line in text.splitlines() if line.strip()]


def install_dashboards(settings: DashboardsSettings, dry_run: bool = False) -> str:
    """Import the saved objects unless every one is already there with the same attributes."""
    objects = saved_objects()
    headers = dict(XSRF_HEADERS)
    auth = None
    if settings.api_key:
        headers["Authorization"] = f"ApiKey {settings.api_key}"
    elif settings.username:
        auth = (settings.username, settings.password or "")
    with httpx.Client(base_url=settings.url.rstrip("/"), headers=headers, auth=auth, verify=settings.verify_certs, timeout=60) as client:
        try:
            missing = [item for item in objects if not _stored_equal(client, item)]
            if not missing:
                return f"unchanged ({len(objects)} saved objects)"
            if dry_run:
                return f"would import {len(objects)} saved objects ({len(missing)} missing or different)"
            body = b"".join(orjson.dumps(item) + b"\n" for item in objects)
            response = client.post(
                "/api/saved_objects/_import",
                params={"overwrite": "true"},
                files={"file": (SAVED_OBJECTS_FILE, body, "application/ndjson")},
            )
        except httpx.HTTPError as error:
            raise DashboardsError(f"cannot reach the dashboards server: {error}") from error
    if response.status_code != 200 or not response.json().get("success"):
        raise DashboardsError(f"saved objects import failed with {response.status_code}: {response.text[:500]}")
    return f"imported {response.json().get('successCount', len(objects))} saved objects"


def _stored_equal(client: httpx.Client, item: dict[str, Any]) -> bool:
    response = client.get(f"/api/saved_objects/{item['type']}/{item['id']}")
    if response.status_code == 404:
        return False
    if response.status_code != 200:
        raise DashboardsError(f"reading saved object {item['type']}/{item['id']} failed with {response.status_code}")
    return response.json().get("attributes") == item.get("attributes")
