"""Shared fixtures: real event data, the test engines, and a running enricher server."""

from __future__ import annotations

import gzip
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

REPO = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).resolve().parent / "fixtures"
SHARED_DATA = Path(os.environ.get("ENRICHER_SHARED_DATA", REPO.parent / "shared" / "data"))
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")

EDGE_TRANSPORT_SYSMON = r"C:\Program Files\Microsoft\Exchange Server\V15\Bin\edgetransport.exe"
EDGE_TRANSPORT_SECURITY = r"C:\Program Files\Microsoft\Exchange Server\V15\Bin\EdgeTransport.exe"
OLE_CONVERTER = r"C:\Program Files\Microsoft\Exchange Server\V15\Bin\OleConverter.exe"
CONHOST = r"C:\Windows\System32\conhost.exe"


def missing_resource(reason: str) -> None:
    """Skip on a developer machine; fail in CI, where every resource must be present."""
    if IN_CI:
        pytest.fail(f"{reason} (CI must provide it)")
    pytest.skip(reason)


def read_ndjson(path: Path) -> list[dict[str, Any]]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as handle:
        return [orjson.loads(line) for line in handle if line.strip()]


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not (SHARED_DATA / "events").is_dir():
        missing_resource(f"the real event corpus is not at {SHARED_DATA}; set ENRICHER_SHARED_DATA")
    return SHARED_DATA


@pytest.fixture(scope="session")
def exchange_events() -> dict[str, list[dict[str, Any]]]:
    """The 21 real Exchange-host process creations, in ECS, raw Winlogbeat and flat form."""
    return {
        form: read_ndjson(FIXTURES / f"exchange_process_creation.{form}.ndjson")
        for form in ("ecs", "winlogbeat_raw", "flat")
    }


def set_parent(event: dict[str, Any], form: str, parent: str) -> dict[str, Any]:
    """Return a copy of a real event whose parent process is ``parent``, in that form's fields."""
    event = orjson.loads(orjson.dumps(event))
    if form == "ecs":
        process_parent = event["process"].setdefault("parent", {})
        process_parent["executable"] = parent
        process_parent["name"] = parent.rsplit("\\", 1)[-1]
    elif form == "winlogbeat_raw":
        data = event["winlog"]["event_data"]
        data["ParentProcessName" if "NewProcessName" in data else "ParentImage"] = parent
    else:
        event["ParentProcessName" if "NewProcessName" in event else "ParentImage"] = parent
    return event


def set_image(event: dict[str, Any], form: str, image: str) -> dict[str, Any]:
    event = orjson.loads(orjson.dumps(event))
    if form == "ecs":
        event["process"]["executable"] = image
        event["process"]["name"] = image.rsplit("\\", 1)[-1]
    elif form == "winlogbeat_raw":
        data = event["winlog"]["event_data"]
        data["NewProcessName" if "NewProcessName" in data else "Image"] = image
    else:
        event["NewProcessName" if "NewProcessName" in event else "Image"] = image
    return event


def image_of(event: dict[str, Any], form: str) -> str:
    if form == "ecs":
        return event["process"]["executable"]
    data = event["winlog"]["event_data"] if form == "winlogbeat_raw" else event
    return data.get("NewProcessName") or data["Image"]


def true_positive_variants(exchange_events: dict[str, list[dict[str, Any]]]) -> list[tuple[str, str, dict[str, Any]]]:
    """One event per form and parent spelling: a real child process given an EdgeTransport.exe parent.

    The child is the first event whose image is neither conhost.exe nor
    OleConverter.exe, so the rule's filters do not apply.
    """
    variants = []
    for form, events in exchange_events.items():
        for code_kind in ("security", "sysmon"):
            candidates = [event for event in events if _is_security(event, form) == (code_kind == "security")]
            child = next(event for event in candidates if not image_of(event, form).lower().endswith("conhost.exe"))
            for parent in (EDGE_TRANSPORT_SYSMON, EDGE_TRANSPORT_SECURITY):
                variants.append((f"{form}-{code_kind}-{parent.rsplit(chr(92), 1)[-1]}", form, set_parent(child, form, parent)))
    return variants


def _is_security(event: dict[str, Any], form: str) -> bool:
    if form == "flat":
        return event["EventID"] == 4688
    return str(event["winlog"]["event_id"]) == "4688" if "winlog" in event else False


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class EnricherServer:
    """``enricher serve`` in a subprocess on a free loopback port."""

    def __init__(self, env: dict[str, str], workdir: Path, workers: int = 1) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = workdir / f"enricher-{self.port}.log"
        full_env = {**os.environ, **env}
        command = [sys.executable, "-m", "enricher", "serve", "--port", str(self.port), "--workers", str(workers)]
        self.process = subprocess.Popen(
            command, cwd=workdir, env=full_env, stdout=self.log.open("wb"), stderr=subprocess.STDOUT
        )
        self._wait_ready()

    def _wait_ready(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"enricher serve exited: {self.log.read_text()}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"enricher serve did not answer within {timeout} s: {self.log.read_text()}")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@pytest.fixture
def start_server(tmp_path: Path) -> Iterator[Any]:
    servers: list[EnricherServer] = []

    def start(env: dict[str, str], workers: int = 1) -> EnricherServer:
        server = EnricherServer(env, tmp_path, workers)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


def _engine_urls_from_env() -> dict[str, str]:
    urls = {}
    for name in ("opensearch", "elasticsearch"):
        url = os.environ.get(f"ENRICHER_TEST_{name.upper()}_URL")
        if url:
            urls[name] = url
    return urls


DEFAULT_ENGINE_URLS = {"opensearch": "http://127.0.0.1:9250", "elasticsearch": "http://127.0.0.1:9251"}


def _engines_responding(urls: dict[str, str]) -> bool:
    for url in urls.values():
        try:
            if httpx.get(f"{url}/_cluster/health", timeout=2).status_code != 200:
                return False
        except httpx.HTTPError:
            return False
    return True


@pytest.fixture(scope="session")
def engine_urls() -> Iterator[dict[str, str]]:
    """URLs of the OpenSearch and Elasticsearch test nodes.

    Taken from ENRICHER_TEST_*_URL, else nodes already responding on the
    default ports are reused, else .ci/engines.sh starts them, and only
    then are they stopped at the end of the session.
    """
    urls = _engine_urls_from_env()
    started = False
    if len(urls) < 2 and _engines_responding(DEFAULT_ENGINE_URLS):
        urls = dict(DEFAULT_ENGINE_URLS)
    if len(urls) < 2:
        script = REPO / ".ci" / "engines.sh"
        completed = subprocess.run(["bash", str(script), "start"], capture_output=True, text=True, timeout=900)
        if completed.returncode != 0:
            missing_resource(
                "cannot start the OpenSearch and Elasticsearch test nodes with .ci/engines.sh "
                f"(needs Java 21+ and Maven): {completed.stderr.strip()[-2000:]}"
            )
        for line in completed.stdout.splitlines():
            if line.startswith("export ENRICHER_TEST_") and "=" in line:
                name, value = line.removeprefix("export ").split("=", 1)
                engine = name.removeprefix("ENRICHER_TEST_").removesuffix("_URL").lower()
                urls[engine] = value.strip().strip("'\"")
        started = True
    yield urls
    if started:
        subprocess.run(["bash", str(REPO / ".ci" / "engines.sh"), "stop"], capture_output=True, timeout=300)


@pytest.fixture(params=["opensearch", "elasticsearch"])
def engine(request: pytest.FixtureRequest, engine_urls: dict[str, str]) -> tuple[str, str]:
    """(engine name, URL) for each real test engine."""
    name = request.param
    if name not in engine_urls:
        missing_resource(f"no {name} test node URL")
    return name, engine_urls[name]


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """In CI a skipped test is a failure: every engine and data file must be there."""
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if not IN_CI or reporter is None:
        return
    skipped = reporter.stats.get("skipped", [])
    if skipped:
        reporter.write_line(f"CI: {len(skipped)} tests were skipped; failing the run", red=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
