"""enricher scan over files, gzip and stdin, with alerts on stdout or in a file."""

from __future__ import annotations

import gzip
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson

from conftest import read_ndjson, true_positive_variants

DEFAULT_RULE_ID = "797011dc-44f4-4e6f-9f10-a8ceefbe566b"


def run_scan(*args: str, stdin: bytes | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "enricher", "scan", *args],
        input=stdin,
        capture_output=True,
        timeout=300,
        cwd=cwd,
        env={key: value for key, value in os.environ.items() if not key.startswith("ENRICHER_")},
    )


def write_ndjson(path: Path, events: list[dict[str, Any]]) -> Path:
    path.write_bytes(b"".join(orjson.dumps(event) + b"\n" for event in events))
    return path


def test_scan_true_positives_to_stdout(tmp_path: Path, exchange_events: dict[str, list[dict[str, Any]]]) -> None:
    variants = true_positive_variants(exchange_events)
    for name, _form, event in variants:
        events_file = write_ndjson(tmp_path / f"{name}.ndjson", [event])
        completed = run_scan("--output", "-", str(events_file))
        assert completed.returncode == 0, completed.stderr
        alerts = [orjson.loads(line) for line in completed.stdout.splitlines()]
        assert [alert["rule"]["id"] for alert in alerts] == [DEFAULT_RULE_ID], name
        assert b"1 events, 1 matches, 1 alerts written" in completed.stderr, name


def test_scan_real_corpus_no_alert(shared_data: Path) -> None:
    corpus = shared_data / "events" / "ecs" / "process_creation.ecs.ndjson.gz"
    completed = run_scan("--output", "-", str(corpus))
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout == b""
    assert b"8059 events, 0 matches, 0 alerts written" in completed.stderr


def test_scan_json_array_gzip_and_stdin(tmp_path: Path, exchange_events: dict[str, list[dict[str, Any]]]) -> None:
    events = [event for _name, _form, event in true_positive_variants(exchange_events)]
    array_file = tmp_path / "events.json.gz"
    array_file.write_bytes(gzip.compress(orjson.dumps(events)))
    from_file = run_scan("--output", "-", str(array_file))
    assert from_file.returncode == 0, from_file.stderr
    assert len(from_file.stdout.splitlines()) == 12

    from_stdin = run_scan("--output", "-", "-", stdin=b"".join(orjson.dumps(event) + b"\n" for event in events))
    assert from_stdin.returncode == 0, from_stdin.stderr
    ids_from_file = [orjson.loads(line)["event"]["id"] for line in from_file.stdout.splitlines()]
    ids_from_stdin = [orjson.loads(line)["event"]["id"] for line in from_stdin.stdout.splitlines()]
    assert ids_from_stdin == ids_from_file


def test_scan_output_file_replay_adds_nothing(tmp_path: Path, exchange_events: dict[str, list[dict[str, Any]]]) -> None:
    events = [event for _name, _form, event in true_positive_variants(exchange_events)]
    events_file = write_ndjson(tmp_path / "events.ndjson", events)
    output = tmp_path / "alerts.ndjson"
    assert run_scan("--output", str(output), str(events_file)).returncode == 0
    again = run_scan("--output", str(output), str(events_file))
    assert b"0 alerts written (12 already present)" in again.stderr
    assert len(read_ndjson(output)) == 12


def test_scan_default_output_file(tmp_path: Path, exchange_events: dict[str, list[dict[str, Any]]]) -> None:
    (_name, _form, event) = true_positive_variants(exchange_events)[0]
    events_file = write_ndjson(tmp_path / "events.ndjson", [event])
    completed = run_scan(str(events_file), cwd=tmp_path)
    assert completed.returncode == 0, completed.stderr
    assert len(read_ndjson(tmp_path / "enricher-alerts.ndjson")) == 1


def test_scan_bad_lines_reported_rest_scanned(tmp_path: Path, exchange_events: dict[str, list[dict[str, Any]]]) -> None:
    (_name, _form, event) = true_positive_variants(exchange_events)[0]
    events_file = tmp_path / "events.ndjson"
    events_file.write_bytes(b"{not json\n" + orjson.dumps(event) + b"\n[1]\n")
    completed = run_scan("--output", "-", str(events_file))
    assert completed.returncode == 0, completed.stderr
    assert len(completed.stdout.splitlines()) == 1
    assert b"2 dead letters" in completed.stderr
    assert b"dead letter line 1: invalid JSON" in completed.stderr


def test_scan_missing_file_fails(tmp_path: Path) -> None:
    completed = run_scan("--output", "-", str(tmp_path / "absent.ndjson"))
    assert completed.returncode == 1
    assert b"absent.ndjson" in completed.stderr


def test_rules_flag_reports_bad_rule(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yml"
    bad.write_text("title: broken\nid: 1\nlogsource: {}\ndetection:\n  condition: nothing\n")
    events_file = write_ndjson(tmp_path / "events.ndjson", [{"a": 1}])
    completed = run_scan("--rules", str(bad), "--default-rule", "yes", "--output", "-", str(events_file))
    assert completed.returncode == 0, completed.stderr
    assert b"bad.yml" in completed.stderr
    assert b"1 rules" in completed.stderr


def run_in_terminal(arguments: list[str], cwd: Path) -> bytes:
    """Run enricher with a pseudo-terminal as standard output and error; return what it wrote."""
    import pty

    pid, descriptor = pty.fork()
    if pid == 0:
        os.chdir(cwd)
        os.execv(sys.executable, [sys.executable, "-m", "enricher", *arguments])
    output = b""
    while True:
        try:
            chunk = os.read(descriptor, 65536)
        except OSError:
            break
        if not chunk:
            break
        output += chunk
    os.waitpid(pid, 0)
    return output


def test_scan_progress_on_terminal_only(tmp_path: Path, exchange_events: dict[str, list[dict[str, Any]]]) -> None:
    events = [event for _name, _form, event in true_positive_variants(exchange_events)] * 400
    events_file = write_ndjson(tmp_path / "events.ndjson", events)
    on_terminal = run_in_terminal(["scan", "--output", str(tmp_path / "a.ndjson"), str(events_file)], tmp_path)
    assert b"events/s" in on_terminal
    assert b"\r" in on_terminal.split(b"enricher scan:")[0]
    assert b"4800 events, 4800 matches, 12 alerts written" in on_terminal

    piped = run_scan("--output", str(tmp_path / "b.ndjson"), str(events_file))
    assert b"events/s" not in piped.stderr
    assert b"\r" not in piped.stderr
    assert b"4800  797011dc-44f4-4e6f-9f10-a8ceefbe566b  WMI Backdoor Exchange Transport Agent" in piped.stderr
