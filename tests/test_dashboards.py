"""The Kibana and OpenSearch Dashboards saved objects in enricher/dashboards.

The structure and the fields are checked against the alerts index templates.
Against the real engines, the alerts that ``enricher scan`` writes from the real
event corpus are aggregated as each visualization's visState describes, and the
buckets are compared with counts computed here from the same alerts.
"""

from __future__ import annotations

import fnmatch
import re
import subprocess
import sys
import uuid
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from importlib import resources
from pathlib import Path
from typing import Any

import orjson
import pytest

from conftest import REPO

SAVED_OBJECTS_FILE = "alerts.ndjson"
TEMPLATE_ENGINES = ("elasticsearch", "opensearch")

# The last migration each type has in Kibana 7.10 and in OpenSearch Dashboards
# 2.x/3.x. OpenSearch Dashboards rejects an object whose migrationVersion is
# newer than its last migration ("... belongs to a more recent version of
# OpenSearch Dashboards"). Kibana 8 and 9 run their later migrations on import.
MIGRATION_VERSIONS = {
    "index-pattern": "7.6.0",
    "visualization": "7.10.0",
    "search": "7.9.3",
    "dashboard": "7.9.3",
}

# Attributes that Kibana 9 accepts on import. Its saved object schemas reject
# unknown attributes. Sources in elastic/kibana, src/platform/plugins/shared/:
# visualizations/server/saved_objects/visualization.ts (schema 8.8.0),
# saved_search/server/saved_objects/schema_legacy.ts (SCHEMA_SEARCH_BASE) and
# dashboard/server/dashboard_saved_object/schema/v1/v1.ts. The index-pattern
# type has no schema.
KIBANA_ATTRIBUTES = {
    "visualization": {
        "title",
        "description",
        "version",
        "kibanaSavedObjectMeta",
        "uiStateJSON",
        "visState",
        "savedSearchRefName",
    },
    "search": {
        "title",
        "description",
        "columns",
        "sort",
        "grid",
        "rowHeight",
        "rowsPerPage",
        "hideChart",
        "breakdownField",
        "kibanaSavedObjectMeta",
        "isTextBasedQuery",
        "usesAdHocDataView",
        "timeRestore",
        "timeRange",
        "refreshInterval",
        "viewMode",
        "hideAggregatedPreview",
        "hits",
        "version",
    },
    "dashboard": {
        "title",
        "description",
        "kibanaSavedObjectMeta",
        "timeRestore",
        "timeFrom",
        "timeTo",
        "refreshInterval",
        "controlGroupInput",
        "panelsJSON",
        "optionsJSON",
        "hits",
        "version",
    },
}

JSON_STRING_ATTRIBUTES = {
    "visualization": ("visState", "uiStateJSON", "kibanaSavedObjectMeta.searchSourceJSON"),
    "search": ("kibanaSavedObjectMeta.searchSourceJSON",),
    "dashboard": ("panelsJSON", "optionsJSON", "kibanaSavedObjectMeta.searchSourceJSON"),
}

# Mapped field types each use needs: aggregations run on doc values, and the
# index pattern's time field and the saved search's sort field must be dates.
FIELD_TYPES_FOR_USE = {
    "terms": {"keyword", "long", "date"},
    "date_histogram": {"date"},
    "time field": {"date"},
    "sort": {"date"},
}

DASHBOARD_GRID_COLUMNS = 48


def load_saved_objects() -> list[dict[str, Any]]:
    """Read the packaged NDJSON file, one saved object per line."""
    text = resources.files("enricher.dashboards").joinpath(SAVED_OBJECTS_FILE).read_text(encoding="utf-8")
    objects = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            objects.append(orjson.loads(line))
        except orjson.JSONDecodeError as error:
            raise AssertionError(f"{SAVED_OBJECTS_FILE} line {number} is not valid JSON: {error}") from error
    return objects


def visualization_ids() -> list[str]:
    """Return the ids of the visualizations, or none when the file does not parse.

    test_saved_objects_parse reports a file that does not parse.
    """
    try:
        objects = load_saved_objects()
    except AssertionError:
        return []
    return [saved_object.get("id") for saved_object in objects if saved_object.get("type") == "visualization"]


def nested_value(document: dict[str, Any], path: str) -> Any:
    value: Any = document
    for part in path.split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return value


def json_attribute(saved_object: dict[str, Any], path: str) -> Any:
    text = nested_value(saved_object["attributes"], path)
    assert isinstance(text, str), f"{saved_object['id']}: attribute {path} is not a JSON string"
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError as error:
        raise AssertionError(f"{saved_object['id']}: attribute {path} is not valid JSON: {error}") from error


def objects_of_type(saved_objects: list[dict[str, Any]], object_type: str) -> list[dict[str, Any]]:
    return [saved_object for saved_object in saved_objects if saved_object["type"] == object_type]


def only_object_of_type(saved_objects: list[dict[str, Any]], object_type: str) -> dict[str, Any]:
    found = objects_of_type(saved_objects, object_type)
    assert len(found) == 1, f"expected one {object_type}, found {len(found)}"
    return found[0]


def enabled_aggs(vis_state: dict[str, Any]) -> list[dict[str, Any]]:
    return [agg for agg in vis_state["aggs"] if agg.get("enabled", True)]


def bucket_aggs(vis_state: dict[str, Any]) -> list[dict[str, Any]]:
    """Return the bucket aggregations in the order Kibana nests them: the order of visState.aggs."""
    return [agg for agg in enabled_aggs(vis_state) if agg["schema"] != "metric"]


@pytest.fixture(scope="module")
def saved_objects() -> list[dict[str, Any]]:
    return load_saved_objects()


# Structure of the saved objects.


def test_saved_objects_parse() -> None:
    objects = load_saved_objects()
    assert objects, f"{SAVED_OBJECTS_FILE} is empty"
    for saved_object in objects:
        for key in ("id", "type", "attributes"):
            assert key in saved_object, f"{saved_object.get('id')}: no {key}"
        assert isinstance(saved_object["attributes"], dict), f"{saved_object['id']}: attributes is not an object"
        assert isinstance(saved_object.get("references", []), list), f"{saved_object['id']}: references is not a list"
    keys = [(saved_object["type"], saved_object["id"]) for saved_object in objects]
    assert len(keys) == len(set(keys)), "duplicate (type, id)"


def test_saved_object_types_and_ids(saved_objects: list[dict[str, Any]]) -> None:
    types = [saved_object["type"] for saved_object in saved_objects]
    assert "lens" not in types
    assert set(types) <= set(MIGRATION_VERSIONS), f"unexpected types {set(types) - set(MIGRATION_VERSIONS)}"
    assert types.count("index-pattern") == 1
    assert types.count("search") == 1
    assert types.count("dashboard") == 1
    assert types.count("visualization") >= 6
    for saved_object in saved_objects:
        assert saved_object["id"].startswith("enricher-"), saved_object["id"]

    index_pattern = only_object_of_type(saved_objects, "index-pattern")
    assert index_pattern["id"] == "enricher-alerts"
    assert index_pattern["attributes"]["title"] == "enricher-alerts*"
    assert index_pattern["attributes"]["timeFieldName"] == "@timestamp"


def test_migration_versions_are_7_10(saved_objects: list[dict[str, Any]]) -> None:
    for saved_object in saved_objects:
        object_type = saved_object["type"]
        expected = {object_type: MIGRATION_VERSIONS[object_type]}
        assert saved_object.get("migrationVersion") == expected, saved_object["id"]
        # Kibana 8.x writes these on export; OpenSearch Dashboards does not know them.
        assert "coreMigrationVersion" not in saved_object, saved_object["id"]
        assert "typeMigrationVersion" not in saved_object, saved_object["id"]


def test_attributes_accepted_by_kibana_9(saved_objects: list[dict[str, Any]]) -> None:
    for saved_object in saved_objects:
        allowed = KIBANA_ATTRIBUTES.get(saved_object["type"])
        if allowed is None:
            continue
        unknown = set(saved_object["attributes"]) - allowed
        assert not unknown, f"{saved_object['id']}: Kibana 9 rejects the attributes {sorted(unknown)}"


def test_json_string_attributes_parse(saved_objects: list[dict[str, Any]]) -> None:
    for saved_object in saved_objects:
        for path in JSON_STRING_ATTRIBUTES.get(saved_object["type"], ()):
            json_attribute(saved_object, path)


def test_visualizations_are_aggregation_based(saved_objects: list[dict[str, Any]]) -> None:
    for visualization in objects_of_type(saved_objects, "visualization"):
        vis_state = json_attribute(visualization, "visState")
        assert vis_state["title"] == visualization["attributes"]["title"], visualization["id"]
        aggs = enabled_aggs(vis_state)
        assert any(agg["schema"] == "metric" for agg in aggs), f"{visualization['id']}: no metric"
        assert bucket_aggs(vis_state), f"{visualization['id']}: no bucket aggregation"
        assert "savedSearchRefName" not in visualization["attributes"], visualization["id"]
        search_source = json_attribute(visualization, "kibanaSavedObjectMeta.searchSourceJSON")
        assert "index" not in search_source, f"{visualization['id']}: index id inline, not by indexRefName"
        assert "indexRefName" in search_source, f"{visualization['id']}: no indexRefName"


def test_references_resolve(saved_objects: list[dict[str, Any]]) -> None:
    known = {(saved_object["type"], saved_object["id"]) for saved_object in saved_objects}
    for saved_object in saved_objects:
        references = saved_object.get("references", [])
        names = [reference["name"] for reference in references]
        assert len(names) == len(set(names)), f"{saved_object['id']}: duplicate reference names"
        for reference in references:
            assert (reference["type"], reference["id"]) in known, (
                f"{saved_object['id']}: reference {reference['name']} to {reference['type']} {reference['id']} "
                f"is not in {SAVED_OBJECTS_FILE}"
            )

        used_names = set()
        if "kibanaSavedObjectMeta" in saved_object["attributes"]:
            search_source = json_attribute(saved_object, "kibanaSavedObjectMeta.searchSourceJSON")
            if "indexRefName" in search_source:
                used_names.add(search_source["indexRefName"])
            for search_filter in search_source.get("filter", []):
                if "indexRefName" in search_filter.get("meta", {}):
                    used_names.add(search_filter["meta"]["indexRefName"])
        if saved_object["type"] == "dashboard":
            for panel in json_attribute(saved_object, "panelsJSON"):
                assert "panelRefName" in panel, f"{saved_object['id']}: panel {panel.get('panelIndex')} is by value"
                used_names.add(panel["panelRefName"])
        assert used_names <= set(names), f"{saved_object['id']}: no reference named {sorted(used_names - set(names))}"
        assert set(names) <= used_names, f"{saved_object['id']}: unused references {sorted(set(names) - used_names)}"

        for reference in references:
            if reference["name"].startswith("kibanaSavedObjectMeta.searchSourceJSON"):
                assert reference["type"] == "index-pattern", f"{saved_object['id']}: {reference['name']}"


def test_dashboard_shows_every_panel(saved_objects: list[dict[str, Any]]) -> None:
    dashboard = only_object_of_type(saved_objects, "dashboard")
    panel_targets = {(reference["type"], reference["id"]) for reference in dashboard["references"]}
    expected = {
        (saved_object["type"], saved_object["id"])
        for saved_object in saved_objects
        if saved_object["type"] in ("visualization", "search")
    }
    assert panel_targets == expected

    panels = json_attribute(dashboard, "panelsJSON")
    cells: dict[tuple[int, int], str] = {}
    for panel in panels:
        grid = panel["gridData"]
        assert grid["i"] == panel["panelIndex"]
        assert grid["x"] >= 0, f"panel {panel['panelIndex']} starts left of the grid"
        assert grid["x"] + grid["w"] <= DASHBOARD_GRID_COLUMNS, f"panel {panel['panelIndex']} ends right of the grid"
        for x in range(grid["x"], grid["x"] + grid["w"]):
            for y in range(grid["y"], grid["y"] + grid["h"]):
                assert (x, y) not in cells, f"panels {cells.get((x, y))} and {panel['panelIndex']} overlap"
                cells[(x, y)] = panel["panelIndex"]


def test_saved_search_columns_and_sort(saved_objects: list[dict[str, Any]]) -> None:
    search = only_object_of_type(saved_objects, "search")
    assert search["attributes"]["columns"] == [
        "rule.name",
        "sigma.level",
        "host.name",
        "user.name",
        "process.command_line",
    ]
    assert search["attributes"]["sort"] == [["@timestamp", "desc"]]


# Fields against the alerts index templates.


def load_template(engine: str) -> dict[str, Any]:
    return orjson.loads((REPO / "mappings" / f"alerts-template.{engine}.json").read_bytes())


def mapped_type(properties: dict[str, Any], path: str) -> str | None:
    """Return the mapped type of a dotted field path, following object properties and multi-fields."""
    node: dict[str, Any] = {"properties": properties}
    for part in path.split("."):
        children = {**node.get("properties", {}), **node.get("fields", {})}
        if part not in children:
            return None
        node = children[part]
    return node.get("type", "object" if "properties" in node else None)


def used_fields(saved_objects: list[dict[str, Any]]) -> Iterator[tuple[str, str, str]]:
    """Yield (object id, field, use) for every field a panel, the saved search or the index pattern uses."""
    for saved_object in saved_objects:
        attributes = saved_object["attributes"]
        if saved_object["type"] == "index-pattern":
            yield saved_object["id"], attributes["timeFieldName"], "time field"
        elif saved_object["type"] == "visualization":
            for agg in enabled_aggs(json_attribute(saved_object, "visState")):
                if "field" in agg.get("params", {}):
                    yield saved_object["id"], agg["params"]["field"], agg["type"]
        elif saved_object["type"] == "search":
            for column in attributes["columns"]:
                yield saved_object["id"], column, "column"
            for sort_field, _direction in attributes["sort"]:
                yield saved_object["id"], sort_field, "sort"


@pytest.mark.parametrize("template_engine", TEMPLATE_ENGINES)
def test_panel_fields_in_template(template_engine: str, saved_objects: list[dict[str, Any]]) -> None:
    properties = load_template(template_engine)["template"]["mappings"]["properties"]
    uses = list(used_fields(saved_objects))
    assert uses
    for object_id, field_path, use in uses:
        field_type = mapped_type(properties, field_path)
        assert field_type is not None, f"{object_id}: {field_path} is not in alerts-template.{template_engine}.json"
        allowed = FIELD_TYPES_FOR_USE.get(use)
        if allowed is not None:
            assert field_type in allowed, (
                f"{object_id}: {field_path} is {field_type}, {use} needs one of {sorted(allowed)}"
            )


# Aggregations on alerts written into the real engines.

# The alerts come from the whole real corpus with every process_creation rule
# folder, so the rule, tactic, host and process buckets hold hundreds of alerts
# each. Scanning takes a few seconds per engine.
RULE_FOLDERS = ("sigma-rules/process_creation", "sigma-rules/other_process_creation")
EVENTS_FILE = "events/ecs/process_creation.ecs.ndjson.gz"
SCAN_SUMMARY = re.compile(r"(\d+) events, (\d+) matches, (\d+) alerts written")

# Kibana resolves the "auto" interval from the dashboard's time range, aiming at
# histogram:barTarget (50) buckets and never more than histogram:maxBars (100).
# In place of that calculation, this test uses the smallest calendar interval
# that keeps the alerts' time span within 100 buckets.
AUTO_INTERVAL_MAX_BUCKETS = 100
CALENDAR_INTERVALS = (
    ("1h", timedelta(hours=1)),
    ("1d", timedelta(days=1)),
    ("1w", timedelta(weeks=1)),
    ("1M", timedelta(days=31)),
    ("1y", timedelta(days=366)),
)
INTERVAL_UNITS = {"h": "1h", "d": "1d", "w": "1w", "M": "1M", "y": "1y"}


def client_for(name: str, url: str) -> Any:
    """Return the engine's own official Python client."""
    if name == "opensearch":
        from opensearchpy import OpenSearch

        return OpenSearch(hosts=[url], timeout=60)
    from elasticsearch import Elasticsearch

    return Elasticsearch(url, request_timeout=60)


def scan_all(name: str, client: Any, index: str) -> list[dict[str, Any]]:
    """Read every alert of the index with a scroll, without event.original."""
    if name == "opensearch":
        from opensearchpy.helpers import scan
    else:
        from elasticsearch.helpers import scan
    query = {"query": {"match_all": {}}, "_source": {"excludes": ["event.original"]}}
    return [hit["_source"] for hit in scan(client, index=index, query=query, size=1000)]


def delete_quietly(engine: str, delete: Any, **kwargs: Any) -> None:
    """Call a delete API of the engine's client and ignore a missing target."""
    if engine == "opensearch":
        from opensearchpy.exceptions import NotFoundError
    else:
        from elasticsearch import NotFoundError
    try:
        delete(**kwargs)
    except NotFoundError:
        pass


@dataclass
class WrittenAlerts:
    """Alerts that one ``enricher scan`` wrote into one engine, and what they were read back as."""

    engine: str
    url: str
    index: str
    client: Any
    alerts: list[dict[str, Any]] = field(default_factory=list)


@pytest.fixture(scope="module")
def written_alerts_by_engine() -> Iterator[dict[str, WrittenAlerts]]:
    """Cache one scan per engine for the whole module, and delete its index and template at the end."""
    written: dict[str, WrittenAlerts] = {}
    yield written
    for entry in written.values():
        # enricher writes to the first index behind the alias, and nothing rolls
        # it over during the test. Elasticsearch rejects wildcard deletes by default.
        delete_quietly(entry.engine, entry.client.indices.delete, index=f"{entry.index}-000001")
        delete_quietly(entry.engine, entry.client.indices.delete_index_template, name=entry.index)


@pytest.fixture
def written_alerts(
    engine: tuple[str, str],
    shared_data: Path,
    written_alerts_by_engine: dict[str, WrittenAlerts],
    tmp_path: Path,
) -> WrittenAlerts:
    name, url = engine
    if name in written_alerts_by_engine:
        return written_alerts_by_engine[name]

    entry = WrittenAlerts(name, url, f"enricher-alerts-dashboards-{uuid.uuid4().hex[:8]}", client_for(name, url))
    # Registered before the scan so that the module teardown deletes a partly written index too.
    written_alerts_by_engine[name] = entry
    rule_arguments = [argument for folder in RULE_FOLDERS for argument in ("--rules", str(shared_data / folder))]
    command = [
        sys.executable,
        "-m",
        "enricher",
        "scan",
        *rule_arguments,
        "--cluster-url",
        url,
        "--alerts-index",
        entry.index,
        str(shared_data / EVENTS_FILE),
    ]
    completed = subprocess.run(command, capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert completed.returncode == 0, completed.stderr[-4000:]
    summary = SCAN_SUMMARY.search(completed.stderr)
    assert summary, f"no summary line in the scan output: {completed.stderr[-2000:]}"
    _events, matches, alerts_written = (int(number) for number in summary.groups())
    assert alerts_written == matches

    entry.client.indices.refresh(index=entry.index)
    entry.alerts = scan_all(name, entry.client, entry.index)
    assert len(entry.alerts) == alerts_written
    return entry


def parse_timestamp(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(timezone.utc)


def time_range(alerts: list[dict[str, Any]]) -> tuple[datetime, datetime]:
    timestamps = [parse_timestamp(alert["@timestamp"]) for alert in alerts]
    return min(timestamps), max(timestamps)


def calendar_interval(params: dict[str, Any], span: timedelta) -> str:
    interval = params["interval"]
    if interval == "auto":
        for name, length in CALENDAR_INTERVALS:
            if span / length <= AUTO_INTERVAL_MAX_BUCKETS:
                return name
        return CALENDAR_INTERVALS[-1][0]
    if interval in INTERVAL_UNITS:
        return INTERVAL_UNITS[interval]
    raise NotImplementedError(f"date_histogram interval {interval!r} is not translated by this test")


def terms_order(agg: dict[str, Any], metrics: dict[str, dict[str, Any]]) -> dict[str, str]:
    params = agg["params"]
    order_by = params["orderBy"]
    if order_by == "_key":
        return {"_key": params["order"]}
    if order_by in metrics and metrics[order_by]["type"] == "count":
        return {"_count": params["order"]}
    raise NotImplementedError(f"terms order by {order_by!r} is not translated by this test")


def kuery_query(query: dict[str, Any]) -> dict[str, Any]:
    if query.get("query", "") != "":
        raise NotImplementedError(f"query {query!r} is not translated by this test")
    return {"match_all": {}}


def search_query(search_source: dict[str, Any], start: datetime, end: datetime) -> dict[str, Any]:
    """Build the query Kibana sends: the saved query and filters, and the time picker's range."""
    if search_source.get("filter"):
        raise NotImplementedError("saved filters are not translated by this test")
    time_filter = {
        "range": {
            "@timestamp": {
                "gte": start.isoformat().replace("+00:00", "Z"),
                "lte": end.isoformat().replace("+00:00", "Z"),
                "format": "strict_date_optional_time",
            }
        }
    }
    return {"bool": {"must": [kuery_query(search_source["query"])], "filter": [time_filter]}}


def aggregation_request(
    vis_state: dict[str, Any], search_source: dict[str, Any], alerts: list[dict[str, Any]]
) -> dict[str, Any]:
    """Translate a visState into the search request Kibana sends for it, with the alerts' time span as time range."""
    start, end = time_range(alerts)
    metrics = {agg["id"]: agg for agg in enabled_aggs(vis_state) if agg["schema"] == "metric"}
    for metric in metrics.values():
        if metric["type"] != "count":
            raise NotImplementedError(f"metric {metric['type']} is not translated by this test")

    nested: dict[str, Any] | None = None
    for agg in reversed(bucket_aggs(vis_state)):
        params = agg["params"]
        if agg["type"] == "terms":
            if params.get("otherBucket") or params.get("missingBucket"):
                raise NotImplementedError("terms other and missing buckets are not translated by this test")
            body = {"field": params["field"], "size": params["size"], "order": terms_order(agg, metrics)}
        elif agg["type"] == "date_histogram":
            body = {
                "field": params["field"],
                "calendar_interval": calendar_interval(params, end - start),
                "time_zone": "UTC",
                "min_doc_count": params.get("min_doc_count", 1),
            }
        else:
            raise NotImplementedError(f"bucket aggregation {agg['type']} is not translated by this test")
        request_agg: dict[str, Any] = {agg["type"]: body}
        if nested is not None:
            request_agg["aggs"] = nested
        nested = {agg["id"]: request_agg}

    return {"size": 0, "query": search_query(search_source, start, end), "aggs": nested}


# A bucket as (key, doc count, sub-buckets). Terms keys are strings, date histogram keys epoch milliseconds.
Bucket = tuple[Any, int, list]


def response_buckets(aggregations: dict[str, Any], aggs: list[dict[str, Any]]) -> list[Bucket]:
    agg, rest = aggs[0], aggs[1:]
    return [
        (bucket["key"], bucket["doc_count"], response_buckets(bucket, rest) if rest else [])
        for bucket in aggregations[agg["id"]]["buckets"]
    ]


def field_values(alert: dict[str, Any], path: str) -> set[Any]:
    """Return the distinct values of a field, because a terms aggregation counts a document once per value."""
    value = nested_value(alert, path)
    if value is None:
        return set()
    values = value if isinstance(value, list) else [value]
    return {item for item in values if item is not None}


def truncate(moment: datetime, interval: str) -> datetime:
    midnight = moment.replace(hour=0, minute=0, second=0, microsecond=0)
    if interval == "1h":
        return moment.replace(minute=0, second=0, microsecond=0)
    if interval == "1d":
        return midnight
    if interval == "1w":
        return midnight - timedelta(days=midnight.weekday())
    if interval == "1M":
        return midnight.replace(day=1)
    if interval == "1y":
        return midnight.replace(month=1, day=1)
    raise NotImplementedError(interval)


def expected_buckets(
    alerts: list[dict[str, Any]], aggs: list[dict[str, Any]], request_aggs: dict[str, Any]
) -> list[Bucket]:
    """Compute the buckets from the alerts in Python: group, count, order, cut to size, recurse."""
    agg, rest = aggs[0], aggs[1:]
    body = request_aggs[agg["id"]][agg["type"]]
    groups: dict[Any, list[dict[str, Any]]] = defaultdict(list)
    for alert in alerts:
        if agg["type"] == "terms":
            keys: Iterable[Any] = field_values(alert, body["field"])
        else:
            moment = parse_timestamp(nested_value(alert, body["field"]))
            keys = [int(truncate(moment, body["calendar_interval"]).timestamp() * 1000)]
        for key in keys:
            groups[key].append(alert)

    if agg["type"] == "terms":
        assert body["order"] == {"_count": "desc"}, "expected buckets are computed for count descending only"
        # Elasticsearch and OpenSearch break count ties by ascending key.
        ordered = sorted(groups.items(), key=lambda item: (-len(item[1]), item[0]))[: body["size"]]
    else:
        ordered = sorted(groups.items())
    return [
        (key, len(members), expected_buckets(members, rest, request_aggs[agg["id"]]["aggs"]) if rest else [])
        for key, members in ordered
    ]


def assert_same_buckets(actual: list[Bucket], expected: list[Bucket], path: str) -> None:
    assert [(key, count) for key, count, _ in actual] == [(key, count) for key, count, _ in expected], path
    for (key, _count, children), (_key, _expected_count, expected_children) in zip(actual, expected):
        assert_same_buckets(children, expected_children, f"{path} > {key}")


@pytest.mark.engines
@pytest.mark.shared_data
@pytest.mark.parametrize("visualization_id", visualization_ids())
def test_visualization_buckets(
    visualization_id: str, written_alerts: WrittenAlerts, saved_objects: list[dict[str, Any]]
) -> None:
    visualization = next(saved_object for saved_object in saved_objects if saved_object["id"] == visualization_id)
    vis_state = json_attribute(visualization, "visState")
    search_source = json_attribute(visualization, "kibanaSavedObjectMeta.searchSourceJSON")
    request = aggregation_request(vis_state, search_source, written_alerts.alerts)

    response = written_alerts.client.search(index=written_alerts.index, body=request)
    aggs = bucket_aggs(vis_state)
    actual = response_buckets(response["aggregations"], aggs)
    expected = expected_buckets(written_alerts.alerts, aggs, request["aggs"])

    assert len(expected) >= 2, f"{visualization_id}: fewer than two buckets, so the check would not tell much"
    assert_same_buckets(actual, expected, visualization_id)


@pytest.mark.engines
@pytest.mark.shared_data
def test_saved_search_newest_first(written_alerts: WrittenAlerts, saved_objects: list[dict[str, Any]]) -> None:
    index_pattern = only_object_of_type(saved_objects, "index-pattern")
    assert fnmatch.fnmatchcase(f"{written_alerts.index}-000001", index_pattern["attributes"]["title"])

    search = only_object_of_type(saved_objects, "search")
    attributes = search["attributes"]
    search_source = json_attribute(search, "kibanaSavedObjectMeta.searchSourceJSON")
    start, end = time_range(written_alerts.alerts)
    request = {
        "size": 50,
        "query": search_query(search_source, start, end),
        "sort": [{sort_field: {"order": direction}} for sort_field, direction in attributes["sort"]],
        "_source": ["@timestamp", *attributes["columns"]],
    }
    hits = written_alerts.client.search(index=written_alerts.index, body=request)["hits"]["hits"]

    assert len(hits) == 50
    timestamps = [parse_timestamp(hit["_source"]["@timestamp"]) for hit in hits]
    assert timestamps[0] == end
    assert timestamps == sorted(timestamps, reverse=True)
    newest = hits[0]["_source"]
    for column in ("rule.name", "sigma.level"):
        assert nested_value(newest, column), f"the newest alert has no {column}"
