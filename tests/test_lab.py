"""The docker-compose lab and the deploy/ configurations, checked without a Docker engine.

docker-compose.yml is validated against the Compose Specification schema and
checked for the facts the lab relies on. The lab's data path (Logstash's
``http`` output posting the sample to /ingest, alerts in the cluster) runs
against the real test engines, with ``enricher serve`` as a subprocess. The
Logstash pipelines, the Winlogbeat snippet and the rsyslog configuration are
parsed and their targets checked against the Compose services.
"""

from __future__ import annotations

import copy
import fnmatch
import gzip
import json
import re
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import orjson
import pytest
import yaml
from jsonschema.validators import validator_for

from conftest import FIXTURES, REPO, read_ndjson, true_positive_variants
from enricher.alerts import alert_id

COMPOSE_FILE = REPO / "docker-compose.yml"
COMPOSE_SCHEMA = FIXTURES / "compose-spec.json"
DEPLOY = REPO / "deploy"
DEFAULT_RULE_ID = "797011dc-44f4-4e6f-9f10-a8ceefbe566b"

ELASTICSEARCH_LAB = {"elasticsearch", "kibana", "enricher", "logstash"}
OPENSEARCH_LAB = {"opensearch", "opensearch-dashboards", "enricher-opensearch", "logstash-opensearch"}
CLUSTER_OF_ENRICHER = {"enricher": "elasticsearch", "enricher-opensearch": "opensearch"}
ENRICHER_OF_LOGSTASH = {"logstash": "enricher", "logstash-opensearch": "enricher-opensearch"}
ENRICHER_CONTAINER_PORT = 8080

# Logstash's default pipeline.batch.size. With format => "json_batch" the
# http output sends each batch the pipeline hands it as one JSON array.
LOGSTASH_BATCH_SIZE = 125
# The headers the http output sends with format => "json_batch" and
# http_compression => true.
LOGSTASH_HTTP_OUTPUT_HEADERS = {"Content-Type": "application/json", "Content-Encoding": "gzip"}


# --- docker-compose.yml ------------------------------------------------------


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE_FILE.read_text())


@pytest.fixture(scope="module")
def compose_validator() -> Any:
    schema = json.loads(COMPOSE_SCHEMA.read_text())
    validator_class = validator_for(schema)
    validator_class.check_schema(schema)
    return validator_class(schema, format_checker=validator_class.FORMAT_CHECKER)


def schema_errors(validator: Any, document: dict[str, Any]) -> list[str]:
    return [f"{error.json_path}: {error.message}" for error in validator.iter_errors(document)]


def services_started(compose: dict[str, Any], profiles: set[str]) -> set[str]:
    """Return the names of the services ``docker compose up`` starts with ``profiles`` enabled.

    A service without profiles always starts. A service with profiles starts
    when any of them is enabled.
    """
    return {
        name
        for name, service in compose["services"].items()
        if not service.get("profiles") or profiles & set(service["profiles"])
    }


def bind_mounts(service: dict[str, Any]) -> dict[str, Path]:
    """Map the container path of each bind mount in the short ``SOURCE:TARGET[:MODE]`` form to its host path."""
    mounts = {}
    for volume in service.get("volumes", []):
        source, target, *_mode = volume.split(":")
        if source.startswith("."):
            mounts[target] = (REPO / source).resolve()
    return mounts


def test_compose_file_valid_against_schema(compose, compose_validator) -> None:
    assert schema_errors(compose_validator, compose) == []


@pytest.mark.parametrize(
    ("case", "mutate"),
    [
        ("misspelt condition", lambda services: services["enricher"]["depends_on"]["elasticsearch"].update(condition="service_health")),
        ("unknown healthcheck key", lambda services: services["enricher"]["healthcheck"].update(intervall="5s")),
        ("unknown service key", lambda services: services["logstash"].update(dependson=["enricher"])),
    ],
)
def test_compose_schema_rejects_mistake(compose, compose_validator, case: str, mutate: Any) -> None:
    broken = copy.deepcopy(compose)
    mutate(broken["services"])
    assert schema_errors(compose_validator, broken) != [], case


def test_compose_default_services(compose) -> None:
    assert services_started(compose, set()) == ELASTICSEARCH_LAB


def test_compose_opensearch_profile_services(compose) -> None:
    assert services_started(compose, {"opensearch"}) - services_started(compose, set()) == OPENSEARCH_LAB
    for name in OPENSEARCH_LAB:
        assert compose["services"][name]["profiles"] == ["opensearch"], name


@pytest.mark.parametrize(("enricher", "cluster"), sorted(CLUSTER_OF_ENRICHER.items()))
def test_enricher_waits_for_healthy_cluster(compose, enricher: str, cluster: str) -> None:
    service = compose["services"][enricher]
    assert service["depends_on"] == {cluster: {"condition": "service_healthy"}}
    assert service["environment"]["ENRICHER_CLUSTER_URL"] == f"http://{cluster}:9200"
    assert service["environment"]["ENRICHER_UPSTREAM_URL"] == f"http://{cluster}:9200"
    assert service["build"]["context"] == "."
    assert f":{ENRICHER_CONTAINER_PORT}" in service["ports"][0]


def test_healthy_dependencies_have_healthchecks(compose) -> None:
    services = compose["services"]
    for name, service in services.items():
        for dependency, condition in service.get("depends_on", {}).items():
            assert condition["condition"] == "service_healthy", (name, dependency)
            assert "test" in services[dependency].get("healthcheck", {}), dependency
            # A dependency must start whenever its dependent does.
            assert set(services[dependency].get("profiles", [])) <= set(service.get("profiles", [])), (name, dependency)


def test_images_pinned_to_versions(compose) -> None:
    expected_versions = {
        "elasticsearch": "9.5.4",
        "kibana": "9.5.4",
        "logstash": "9.5.4",
        "logstash-opensearch": "9.5.4",
        "opensearch": "3.8.0",
        "opensearch-dashboards": "3.8.0",
    }
    for name, version in expected_versions.items():
        image = compose["services"][name]["image"]
        assert image.rsplit(":", 1)[1] == version, (name, image)


def test_clusters_single_node_without_security(compose) -> None:
    elasticsearch = compose["services"]["elasticsearch"]["environment"]
    assert elasticsearch["discovery.type"] == "single-node"
    assert elasticsearch["xpack.security.enabled"] == "false"
    opensearch = compose["services"]["opensearch"]["environment"]
    assert opensearch["discovery.type"] == "single-node"
    assert opensearch["DISABLE_SECURITY_PLUGIN"] == "true"
    dashboards = compose["services"]["opensearch-dashboards"]["environment"]
    assert dashboards["DISABLE_SECURITY_DASHBOARDS_PLUGIN"] == "true"


def test_ports_published_on_loopback_only(compose) -> None:
    for name, service in compose["services"].items():
        for port in service.get("ports", []):
            assert port.startswith("127.0.0.1:"), (name, port)


@pytest.mark.parametrize("logstash", sorted(ENRICHER_OF_LOGSTASH))
def test_logstash_mounts_files_of_repository(compose, logstash: str) -> None:
    service = compose["services"][logstash]
    mounts = bind_mounts(service)
    pipeline = mounts["/usr/share/logstash/pipeline/logstash.conf"]
    assert pipeline == DEPLOY / "logstash" / "ingest.conf"
    for target, source in mounts.items():
        assert source.is_file(), f"{logstash} mounts {source} at {target}, which does not exist"
    for volume in service["volumes"]:
        assert volume.endswith(":ro"), volume


# --- Logstash pipeline files -------------------------------------------------


@dataclass
class Plugin:
    """A plugin block of a Logstash pipeline."""

    name: str
    settings: dict[str, Any]
    # Conditions of the if/else branches the plugin sits in, as written.
    conditions: list[str] = field(default_factory=list)


_TOKEN = re.compile(
    r"""
    (?P<space>\s+|\#[^\n]*)
    | (?P<string>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')
    | (?P<arrow>=>)
    | (?P<punct>[{}\[\],()])
    | (?P<word>[^\s{}\[\],()"'\#]+)
    """,
    re.VERBOSE,
)


def tokenize_logstash(text: str) -> list[tuple[str, str]]:
    tokens = []
    position = 0
    while position < len(text):
        match = _TOKEN.match(text, position)
        if match is None:
            raise ValueError(f"cannot read the Logstash configuration at offset {position}: {text[position:position + 40]!r}")
        position = match.end()
        if match.lastgroup != "space":
            tokens.append((match.lastgroup, match.group()))
    return tokens


class LogstashConfigParser:
    """Parser for the subset of the Logstash configuration language that deploy/logstash uses.

    Sections hold plugins and if / else if / else branches; settings take
    strings, numbers, barewords, arrays and hashes. The result maps each
    section to its plugins in order, with the branch conditions of each.
    """

    def __init__(self, text: str) -> None:
        self.tokens = tokenize_logstash(text)
        self.index = 0

    def parse(self) -> dict[str, list[Plugin]]:
        sections: dict[str, list[Plugin]] = {}
        while self.index < len(self.tokens):
            section = self.expect("word")
            if section not in ("input", "filter", "output"):
                raise ValueError(f"invalid section {section!r}; expected input, filter or output")
            self.expect("punct", "{")
            sections.setdefault(section, []).extend(self.block([]))
        return sections

    def block(self, conditions: list[str]) -> list[Plugin]:
        plugins: list[Plugin] = []
        while not self.at("punct", "}"):
            if self.at("word", "if"):
                plugins.extend(self.branches(conditions))
                continue
            name = self.expect("word")
            self.expect("punct", "{")
            plugins.append(Plugin(name, self.settings(), list(conditions)))
        self.expect("punct", "}")
        return plugins

    def branches(self, conditions: list[str]) -> list[Plugin]:
        plugins: list[Plugin] = []
        self.expect("word", "if")
        condition = self.condition()
        plugins.extend(self.block([*conditions, condition]))
        while self.at("word", "else"):
            self.expect("word", "else")
            if self.at("word", "if"):
                self.expect("word", "if")
                condition = self.condition()
            else:
                self.expect("punct", "{")
                condition = "else"
            plugins.extend(self.block([*conditions, condition]))
        return plugins

    def condition(self) -> str:
        """Read the tokens of a condition up to the ``{`` that opens its branch."""
        parts = []
        while not self.at("punct", "{"):
            parts.append(self.tokens[self.index][1])
            self.index += 1
        self.expect("punct", "{")
        return " ".join(parts)

    def settings(self) -> dict[str, Any]:
        settings: dict[str, Any] = {}
        while not self.at("punct", "}"):
            name = self.expect("word")
            self.expect("arrow")
            settings[name] = self.value()
        self.expect("punct", "}")
        return settings

    def value(self) -> Any:
        kind, text = self.tokens[self.index]
        self.index += 1
        if kind == "string":
            return re.sub(r"\\(.)", r"\1", text[1:-1])
        if kind == "word":
            return {"true": True, "false": False}.get(text, _number(text))
        if text == "[":
            items = []
            while not self.at("punct", "]"):
                items.append(self.value())
                if self.at("punct", ","):
                    self.index += 1
            self.expect("punct", "]")
            return items
        if text == "{":
            entries = {}
            while not self.at("punct", "}"):
                key = self.value()
                self.expect("arrow")
                entries[key] = self.value()
                if self.at("punct", ","):
                    self.index += 1
            self.expect("punct", "}")
            return entries
        raise ValueError(f"expected a value, found {text!r}")

    def at(self, kind: str, text: str | None = None) -> bool:
        if self.index >= len(self.tokens):
            return False
        token_kind, token_text = self.tokens[self.index]
        return token_kind == kind and (text is None or token_text == text)

    def expect(self, kind: str, text: str | None = None) -> str:
        if not self.at(kind, text):
            found = self.tokens[self.index] if self.index < len(self.tokens) else "the end of the file"
            raise ValueError(f"expected {text or kind}, found {found}")
        self.index += 1
        return self.tokens[self.index - 1][1]


def _number(text: str) -> Any:
    for convert in (int, float):
        try:
            return convert(text)
        except ValueError:
            pass
    return text


def read_pipeline(name: str) -> dict[str, list[Plugin]]:
    return LogstashConfigParser((DEPLOY / "logstash" / name).read_text()).parse()


def only_plugin(pipeline: dict[str, list[Plugin]], section: str, name: str) -> Plugin:
    plugins = [plugin for plugin in pipeline[section] if plugin.name == name]
    assert len(plugins) == 1, f"{len(plugins)} {name} plugins in {section}"
    return plugins[0]


def environment_default(value: str) -> tuple[str, str]:
    """Split a Logstash ``${NAME:default}`` reference into the variable name and its default."""
    match = re.fullmatch(r"\$\{([A-Za-z_][A-Za-z0-9_]*):([^}]*)\}", value)
    assert match, f"{value!r} is not a ${{NAME:default}} reference"
    return match.group(1), match.group(2)


def test_parser_reads_branches_and_values() -> None:
    text = """
    # comment
    filter {
      if [a][b] == "x" { mutate { add_tag => ["one", 'two'] } }
      else if [c] { drop { } }
      else { mutate { copy => { "[d]" => "[e]" } id => 7 } }
    }
    """
    filters = LogstashConfigParser(text).parse()["filter"]
    assert [plugin.name for plugin in filters] == ["mutate", "drop", "mutate"]
    assert filters[0].settings == {"add_tag": ["one", "two"]}
    assert filters[0].conditions == ['[ a ] [ b ] == "x"']
    assert filters[1].conditions == ["[ c ]"]
    assert filters[2].settings == {"copy": {"[d]": "[e]"}, "id": 7}
    assert filters[2].conditions == ["else"]


def test_ingest_pipeline_reads_sample_once() -> None:
    file_input = only_plugin(read_pipeline("ingest.conf"), "input", "file")
    assert file_input.settings["mode"] == "read"
    assert file_input.settings["codec"] == "json"
    assert file_input.settings["sincedb_path"] == "/dev/null"
    # Read mode deletes finished files by default, but the sample is mounted read-only.
    assert file_input.settings["file_completed_action"] == "log"


def test_ingest_pipeline_posts_json_batch_gzip() -> None:
    http_output = only_plugin(read_pipeline("ingest.conf"), "output", "http")
    variable, default_url = environment_default(http_output.settings["url"])
    assert variable == "ENRICHER_INGEST_URL"
    assert urlsplit(default_url).netloc == "enricher:8080"
    assert urlsplit(default_url).path == "/ingest"
    assert http_output.settings["http_method"] == "post"
    assert http_output.settings["format"] == "json_batch"
    assert http_output.settings["http_compression"] is True
    assert 503 in http_output.settings["retryable_codes"]


@pytest.mark.parametrize(("logstash", "enricher"), sorted(ENRICHER_OF_LOGSTASH.items()))
def test_ingest_pipeline_matches_compose(compose, logstash: str, enricher: str) -> None:
    pipeline = read_pipeline("ingest.conf")
    service = compose["services"][logstash]
    variable, _default = environment_default(only_plugin(pipeline, "output", "http").settings["url"])
    url = urlsplit(service["environment"][variable])
    assert url.hostname == enricher
    assert url.port == ENRICHER_CONTAINER_PORT
    assert url.path == "/ingest"
    assert service["depends_on"] == {enricher: {"condition": "service_healthy"}}

    patterns = only_plugin(pipeline, "input", "file").settings["path"]
    samples = [target for target in bind_mounts(service) if target.endswith(".ndjson")]
    assert samples, f"{logstash} mounts no sample"
    for target in samples:
        assert any(fnmatch.fnmatch(target, pattern) for pattern in patterns), target


def test_facade_pipeline_targets_bulk_facade() -> None:
    output = only_plugin(read_pipeline("facade.conf"), "output", "elasticsearch")
    [hosts] = output.settings["hosts"]
    _variable, default_host = environment_default(hosts)
    assert urlsplit(default_host).netloc == "enricher:8080"
    assert urlsplit(default_host).path == ""
    assert output.settings["manage_template"] is False
    assert output.settings["ilm_enabled"] is False
    assert output.settings["data_stream"] is False


def test_enrich_filter_pipeline_posts_event_to_enrich() -> None:
    pipeline = read_pipeline("enrich-filter.conf")
    ruby = only_plugin(pipeline, "filter", "ruby")
    http_filter = only_plugin(pipeline, "filter", "http")
    _variable, default_url = environment_default(http_filter.settings["url"])
    assert urlsplit(default_url).netloc == "enricher:8080"
    assert urlsplit(default_url).path == "/enrich"
    assert http_filter.settings["verb"] == "POST"
    # The body is the event's JSON text that the ruby filter stored before.
    body_field = re.fullmatch(r"%\{(.+)\}", http_filter.settings["body"]).group(1)
    assert f'event.set("{body_field}", event.to_json)' in ruby.settings["code"]
    assert pipeline["filter"].index(ruby) < pipeline["filter"].index(http_filter)
    assert http_filter.settings["target_body"] == "[sigma]"

    output = only_plugin(pipeline, "output", "elasticsearch")
    [hosts] = output.settings["hosts"]
    _variable, default_host = environment_default(hosts)
    assert urlsplit(default_host).netloc == "elasticsearch:9200"


# --- Winlogbeat and rsyslog --------------------------------------------------


def expand_dotted_keys(value: Any) -> Any:
    """Nest ``a.b: c`` as ``a: {b: c}``, as Beats read their YAML configuration."""
    if isinstance(value, list):
        return [expand_dotted_keys(item) for item in value]
    if not isinstance(value, dict):
        return value
    nested: dict[str, Any] = {}
    for key, item in value.items():
        *parents, last = key.split(".")
        target = nested
        for parent in parents:
            target = target.setdefault(parent, {})
        target[last] = expand_dotted_keys(item)
    return nested


def test_winlogbeat_ships_to_enricher() -> None:
    config = expand_dotted_keys(yaml.safe_load((DEPLOY / "beats" / "winlogbeat.yml").read_text()))
    [host] = config["output"]["elasticsearch"]["hosts"]
    assert urlsplit(host).netloc == f"enricher:{ENRICHER_CONTAINER_PORT}"
    assert urlsplit(host).path == ""
    assert config["setup"]["template"]["enabled"] is False
    assert config["setup"]["ilm"]["enabled"] is False
    event_logs = {log["name"]: log["event_id"] for log in config["winlogbeat"]["event_logs"]}
    assert event_logs == {"Microsoft-Windows-Sysmon/Operational": 1, "Security": 4688}


def test_rsyslog_actions_use_bulk_facade() -> None:
    text = (DEPLOY / "rsyslog" / "omelasticsearch.conf").read_text()
    code = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#"))
    assert 'module(load="omelasticsearch")' in code
    actions = re.findall(r'action\(\s*type="omelasticsearch"(.*?)\)', code, re.DOTALL)
    assert len(actions) == 2
    templates = set(re.findall(r'template\(name="([^"]+)"', code))
    for action in actions:
        parameters = dict(re.findall(r'([\w.]+)="([^"]*)"', action))
        assert parameters["server"] == "127.0.0.1"
        assert parameters["serverport"] == str(ENRICHER_CONTAINER_PORT)
        assert parameters["bulkmode"] == "on"
        assert parameters["searchIndex"]
        assert parameters["searchType"] == ""
        assert parameters["template"] in templates
    for name in ("@timestamp", "message", "host"):
        assert f'\\"{name}\\":' in code, name


# --- Dockerfile --------------------------------------------------------------


def dockerfile_instructions() -> list[tuple[str, str]]:
    """Return (INSTRUCTION, arguments) of each instruction, with continuation lines joined."""
    text = (REPO / "Dockerfile").read_text()
    logical = re.sub(r"\\\n", " ", text)
    instructions = []
    for line in logical.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            instruction, _, arguments = line.partition(" ")
            instructions.append((instruction.upper(), " ".join(arguments.split())))
    return instructions


def test_dockerfile_runs_enricher_as_non_root() -> None:
    instructions = dockerfile_instructions()
    assert instructions[0] == ("FROM", "python:3.11-slim")
    users = [arguments for instruction, arguments in instructions if instruction == "USER"]
    assert users, "the image sets no USER"
    assert users[-1].split(":")[0] not in ("0", "root")
    assert ("EXPOSE", "8080") in instructions
    environment = " ".join(arguments for instruction, arguments in instructions if instruction == "ENV")
    assert "ENRICHER_HOST=0.0.0.0" in environment.split()
    assert instructions[-1] == ("CMD", '["enricher", "serve"]')
    assert any(instruction == "RUN" and "pip install ." in arguments for instruction, arguments in instructions)


def test_dockerignore_keeps_build_inputs() -> None:
    patterns = (REPO / ".dockerignore").read_text().split()
    reincluded = {pattern[1:] for pattern in patterns if pattern.startswith("!")}
    copied = set()
    for instruction, arguments in dockerfile_instructions():
        if instruction == "COPY" and not arguments.startswith("--from"):
            *sources, _destination = arguments.split()
            copied.update(sources)
    assert copied == reincluded
    for source in copied:
        assert (REPO / source).exists(), source


# --- The lab's data path against the real engines ----------------------------


def post_like_logstash_http_output(enricher_url: str, events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Send ``events`` as ingest.conf's http output does and return the response of each request.

    Each batch of up to 125 events is one JSON array, gzip-compressed, sent
    with the headers of the http output.
    """
    responses = []
    for start in range(0, len(events), LOGSTASH_BATCH_SIZE):
        body = gzip.compress(orjson.dumps(events[start : start + LOGSTASH_BATCH_SIZE]))
        response = httpx.post(f"{enricher_url}/ingest", content=body, headers=LOGSTASH_HTTP_OUTPUT_HEADERS, timeout=60)
        assert response.status_code == 200, response.text
        responses.append(response.json())
    return responses


def engine_client(name: str, url: str) -> Any:
    """Return the engine's official Python client, used to read back what enricher wrote."""
    if name == "opensearch":
        from opensearchpy import OpenSearch

        return OpenSearch(hosts=[url])
    from elasticsearch import Elasticsearch

    return Elasticsearch(url)


def alert_hits(client: Any, index: str) -> list[dict[str, Any]]:
    client.indices.refresh(index=index)
    return client.search(index=index, body={"query": {"match_all": {}}, "size": 100})["hits"]["hits"]


@pytest.fixture
def lab_sample(compose) -> list[dict[str, Any]]:
    """The events the lab's Logstash reads: the NDJSON file that docker-compose.yml mounts."""
    [sample] = [source for target, source in bind_mounts(compose["services"]["logstash"]).items() if target.endswith(".ndjson")]
    return read_ndjson(sample)


@pytest.fixture
def true_positive(exchange_events: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    """A real ECS event given an EdgeTransport.exe parent, so that the bundled rule matches it."""
    _name, _form, event = true_positive_variants({"ecs": exchange_events["ecs"]})[0]
    return event


@pytest.fixture
def lab_enricher(engine, start_server, compose) -> tuple[Any, Any, str]:
    """``enricher serve`` with the lab's environment, the lab cluster replaced by the test engine.

    Returns the server, the engine's client and the alerts index.
    """
    name, url = engine
    lab_cluster = f"http://{CLUSTER_OF_ENRICHER['enricher']}:9200"
    environment = {
        variable: url if value == lab_cluster else value
        for variable, value in compose["services"]["enricher"]["environment"].items()
    }
    alerts_index = f"enricher-alerts-lab-{uuid.uuid4().hex[:8]}"
    server = start_server({**environment, "ENRICHER_ALERTS_INDEX": alerts_index})
    return server, engine_client(name, url), alerts_index


@pytest.mark.engines
def test_lab_replay_writes_one_alert(lab_enricher, lab_sample, true_positive) -> None:
    server, client, alerts_index = lab_enricher
    events = [*lab_sample, true_positive]

    [first] = post_like_logstash_http_output(server.url, events)

    assert first["events"] == len(lab_sample) + 1
    assert first["matches"] == 1
    assert first["alerts_written"] == 1
    assert first["alerts_duplicate"] == 0
    assert first["alerts_failed"] == 0
    assert first["dead_letters"] == 0
    hits = alert_hits(client, alerts_index)
    assert len(hits) == 1
    assert hits[0]["_id"] == alert_id(DEFAULT_RULE_ID, true_positive)
    assert hits[0]["_source"]["rule"]["id"] == DEFAULT_RULE_ID

    [replay] = post_like_logstash_http_output(server.url, events)

    assert replay["matches"] == 1
    assert replay["alerts_written"] == 0
    assert replay["alerts_duplicate"] == 1
    assert len(alert_hits(client, alerts_index)) == 1


@pytest.mark.engines
def test_lab_replay_spans_batches(lab_enricher, lab_sample, true_positive) -> None:
    """Six container starts replay the sample six times, and the true positive comes after them."""
    server, client, alerts_index = lab_enricher
    events = [*lab_sample * 6, true_positive]

    responses = post_like_logstash_http_output(server.url, events)

    assert [response["events"] for response in responses] == [125, len(events) - 125]
    assert [response["matches"] for response in responses] == [0, 1]
    assert sum(response["alerts_written"] for response in responses) == 1
    assert len(alert_hits(client, alerts_index)) == 1
