"""rsyslog's omelasticsearch, from Debian's rsyslog-elasticsearch package, shipping JSON lines through the _bulk facade.

rsyslogd runs in the foreground with the deployed configuration
(``deploy/rsyslog/omelasticsearch.conf``), its own work directory and pid
file. It reads the events from a file with imfile and loads no socket input,
so it does not touch the machine's syslog. Each line is the JSON text of a
real ECS event, which the deployed configuration sends unchanged as the
document of an ``index`` action.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from conftest import REPO, missing_resource, true_positive_variants
from facade_checks import DEFAULT_RULE_ID, all_sources, canonical, count_documents, engine_client, wait_for_documents

pytestmark = pytest.mark.engines

DEPLOY_CONFIG = REPO / "deploy" / "rsyslog" / "omelasticsearch.conf"
# rsyslogd is in /usr/sbin, which is not on every user's PATH.
SEARCH_PATH = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/sbin"])
INSTALL_HINT = "Install it with: apt-get install rsyslog rsyslog-elasticsearch"


def rsyslog_config(work_dir: Path, events_file: Path, port: int, index: str, error_file: Path) -> str:
    """Return the deployed rsyslog configuration, pointed at the facade on ``port``, reading ``events_file``.

    The omelasticsearch actions of ``deploy/rsyslog/omelasticsearch.conf`` get
    the test's server, port, index and error file. An imfile input feeds the
    file's ``enricher`` ruleset, where its header documents that inputs go.
    """
    deployed = DEPLOY_CONFIG.read_text()
    for name, value in (
        ("server", "127.0.0.1"),
        ("serverport", str(port)),
        ("searchIndex", index),
        ("errorFile", str(error_file)),
    ):
        deployed = set_parameter(deployed, name, value)
    return (
        # The work directory stores imfile's read positions and the actions'
        # queue files. The largest real event is about 3.3 KB, under rsyslog's
        # default 8 KB limit, but a longer line would be cut and no longer be JSON.
        f'global(workDirectory="{work_dir}" maxMessageSize="64k")\n'
        'module(load="imfile")\n'
        f'input(type="imfile" file="{events_file}" tag="events" ruleset="enricher")\n'
        f"{deployed}\n"
        # rsyslogd's own messages have the syslog facility and go to the
        # default ruleset.
        f'syslog.* action(type="omfile" file="{work_dir / "rsyslogd-messages.log"}")\n'
    )


def set_parameter(config: str, name: str, value: str) -> str:
    """Set every ``name="..."`` or ``name=[...]`` parameter in ``config`` to ``value``, matching ``name`` case-insensitively.

    Raises ``ValueError`` when ``config`` has no such parameter.
    """
    pattern = re.compile(rf'(?i)\b{re.escape(name)}\s*=\s*("[^"]*"|\[[^\]]*\])')
    config, replaced = pattern.subn(lambda match: f'{name}="{value}"', config)
    if replaced == 0:
        raise ValueError(f"{DEPLOY_CONFIG} has no {name} parameter to set")
    return config


@pytest.fixture(scope="module")
def rsyslogd(tmp_path_factory: pytest.TempPathFactory) -> str:
    """Path of rsyslogd, checked to load omelasticsearch."""
    path = shutil.which("rsyslogd", path=SEARCH_PATH)
    if path is None:
        missing_resource(f"rsyslogd is not installed. {INSTALL_HINT}")
    config = tmp_path_factory.mktemp("rsyslog-check") / "check.conf"
    # Without an action, the validation run fails whether the module loads or not.
    config.write_text('module(load="omelasticsearch")\n*.* action(type="omfile" file="/dev/null")\n')
    check = subprocess.run([path, "-N1", "-f", str(config)], capture_output=True, text=True, timeout=60)
    if check.returncode != 0:
        missing_resource(f"rsyslogd failed to load omelasticsearch. {INSTALL_HINT}\n{check.stdout}{check.stderr}")
    return path


@pytest.fixture
def lines(exchange_events: dict[str, list[dict[str, Any]]]) -> list[bytes]:
    """JSON lines of the 21 real ECS events and one true positive made from a real event."""
    _name, _form, positive = true_positive_variants({"ecs": exchange_events["ecs"]})[0]
    return [orjson.dumps(event) for event in [*exchange_events["ecs"], positive]]


class Rsyslogd:
    """``rsyslogd -n`` in a subprocess, with its output kept for failure messages."""

    def __init__(self, executable: str, config: Path, work_dir: Path) -> None:
        self.work_dir = work_dir
        self.output = (work_dir / "rsyslogd.out").open("wb")
        command = [executable, "-n", "-f", str(config), "-i", str(work_dir / "rsyslogd.pid")]
        self.process = subprocess.Popen(command, stdout=self.output, stderr=subprocess.STDOUT)

    def diagnostics(self) -> str:
        """rsyslogd's state, output and internal messages, for an assertion message."""
        state = "running" if self.process.poll() is None else f"exited with {self.process.returncode}"
        parts = [f"rsyslogd {state}"]
        for name in ("rsyslogd.out", "rsyslogd-messages.log", "omelasticsearch-errors.json"):
            path = self.work_dir / name
            if path.exists():
                parts.append(f"--- {name}\n{path.read_text(errors='replace')[-4000:]}")
        return "\n".join(parts)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.output.close()


@pytest.fixture
def run_rsyslogd(rsyslogd: str) -> Iterator[Any]:
    started: list[Rsyslogd] = []

    def run(config: Path, work_dir: Path) -> Rsyslogd:
        daemon = Rsyslogd(rsyslogd, config, work_dir)
        started.append(daemon)
        return daemon

    yield run
    for daemon in started:
        daemon.stop()


def test_rsyslog_bulk_through_facade(engine, start_server, run_rsyslogd, lines: list[bytes], tmp_path: Path) -> None:
    name, url = engine
    suffix = uuid.uuid4().hex[:8]
    events_index = f"rsyslog-test-{suffix}"
    alerts_index = f"enricher-alerts-test-{suffix}"
    server = start_server({"ENRICHER_UPSTREAM_URL": url, "ENRICHER_ALERTS_INDEX": alerts_index})

    work_dir = tmp_path / "rsyslog"
    work_dir.mkdir()
    events_file = work_dir / "events.ndjson"
    events_file.write_bytes(b"\n".join(lines) + b"\n")
    error_file = work_dir / "omelasticsearch-errors.json"
    config = work_dir / "rsyslog.conf"
    config.write_text(rsyslog_config(work_dir, events_file, server.port, events_index, error_file))

    daemon = run_rsyslogd(config, work_dir)
    upstream = engine_client(name, url)
    wait_for_documents(upstream, events_index, len(lines), diagnostics=daemon.diagnostics)

    documents = all_sources(upstream, events_index)
    tagged = [document for document in documents if "rule" in document]
    untagged = [document for document in documents if "rule" not in document]
    assert len(tagged) == 1, daemon.diagnostics()
    assert tagged[0]["rule"]["id"] == [DEFAULT_RULE_ID]
    assert tagged[0]["rule"]["ruleset"] == "sigma"
    assert tagged[0]["threat"]["technique"]["subtechnique"]["id"] == ["T1546.003"]
    assert tagged[0]["tags"] == ["sigma"]
    # The real events have no rule, threat or tags fields of their own.
    untouched = {key: value for key, value in tagged[0].items() if key not in ("rule", "threat", "tags")}
    assert untouched == orjson.loads(lines[-1])
    assert sorted(map(canonical, untagged)) == sorted(canonical(orjson.loads(line)) for line in lines[:-1])
    assert not error_file.exists(), daemon.diagnostics()

    assert count_documents(upstream, alerts_index) == 1
    alert = all_sources(upstream, alerts_index)[0]
    assert alert["rule"]["id"] == DEFAULT_RULE_ID
    assert alert["event"]["kind"] == "alert"
