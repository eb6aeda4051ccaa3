"""The SigmaHQ process_creation corpus: every rule loads, and the regression events fire their rules."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from conftest import read_ndjson
from enricher.detector import Detector
from enricher.rules.fieldmap import FieldMapping
from enricher.rules.loader import RuleSet, load_placeholders, load_rules
from enricher.rules.logsource import LogsourceTable

PLACEHOLDER_RULE = "43311e65-84d8-42a5-b3d4-c94d9b67038f"
FORMS = ("ecs", "winlogbeat_raw", "flat")


def corpus_paths(shared_data: Path) -> list[Path]:
    rules = shared_data / "sigma-rules"
    return [rules / "process_creation", rules / "other_process_creation"]


@pytest.fixture(scope="module")
def corpus(shared_data: Path) -> RuleSet:
    return load_rules(corpus_paths(shared_data))


def test_corpus_rules_load(corpus: RuleSet) -> None:
    assert len(corpus.sources) == 1441
    assert len(corpus.rules) == 1440
    (error,) = corpus.errors
    assert error.rule_id == PLACEHOLDER_RULE
    assert "placeholder %userdomain% has no value" in error.reason


def test_corpus_loads_whole_with_placeholders(shared_data: Path, tmp_path: Path) -> None:
    placeholders = tmp_path / "placeholders.yml"
    placeholders.write_text("placeholders:\n  userdomain: [CONTOSO]\n")
    loaded = load_rules(corpus_paths(shared_data), placeholders=load_placeholders(placeholders))
    assert loaded.errors == []
    assert len(loaded.rules) == 1441


def test_corpus_rules_all_gated(corpus: RuleSet) -> None:
    detector = Detector(corpus, FieldMapping.default(), LogsourceTable.load())
    assert detector.ungated_rules() == []


def test_rules_check_command(shared_data: Path) -> None:
    completed = subprocess.run(
        [sys.executable, "-m", "enricher", "rules", "check", *map(str, corpus_paths(shared_data))],
        capture_output=True,
        text=True,
        timeout=300,
        env={key: value for key, value in os.environ.items() if not key.startswith("ENRICHER_")},
    )
    assert completed.returncode == 1
    lines = completed.stdout.splitlines()
    assert sum(line.startswith("loaded ") for line in lines) == 1440
    (rejected,) = [line for line in lines if line.startswith("rejected ")]
    assert "proc_creation_win_userdomain_variable_enumeration.yml" in rejected
    assert "1440 loaded, 1 rejected" in completed.stderr


def regression_cases(shared_data: Path) -> Iterator[tuple[str, str, int | None]]:
    """Yield (rule id, event JSON path, expected match count) from SigmaHQ's info.yml files.

    An absent match_count means the positive test expects at least one match.
    """
    for info_file in sorted((shared_data / "sigma-rules" / "regression_data").rglob("info.yml")):
        info = yaml.safe_load(info_file.read_text())
        rule_id = info["rule_metadata"][0]["id"]
        for test in info["regression_tests_info"]:
            yield rule_id, test["path"].removesuffix(".evtx") + ".json", test.get("match_count")


def regression_events(shared_data: Path) -> dict[str, list[tuple[str, dict[str, Any]]]]:
    """Return (source JSON path, event) per form; the flat form names the path of each sample id."""
    folder = shared_data / "events" / "sigma_regression"
    flat = read_ndjson(folder / "sigma_regression_process_creation.flat.ndjson")
    path_of = {event["_sample_id"]: event["_source"]["path"] for event in flat}
    events = {"flat": [(path_of[event["_sample_id"]], event) for event in flat]}
    for form in ("ecs", "winlogbeat_raw"):
        loaded = read_ndjson(folder / f"sigma_regression_process_creation.{form}.ndjson")
        events[form] = [(path_of[event["labels"]["sample_id"]], event) for event in loaded]
    return events


@pytest.mark.parametrize("form", FORMS)
def test_regression_events_fire_their_rules(form: str, shared_data: Path, corpus: RuleSet) -> None:
    rules = {rule.id: rule for rule in corpus.rules}
    events = regression_events(shared_data)[form]
    assert len(events) == 151
    mapping = FieldMapping.default()
    logsources = LogsourceTable.load()
    failures = []
    cases = list(regression_cases(shared_data))
    assert len(cases) == 136
    for rule_id, path, expected in cases:
        detector = Detector(RuleSet(rules=[rules[rule_id]]), mapping, logsources)
        selected = [event for source, event in events if source.endswith(path)]
        matched = sum(1 for event in selected if detector.match(event))
        if (matched != expected) if expected is not None else matched < 1:
            failures.append(f"{rule_id} {path}: {matched} matches, expected {expected}")
    assert failures == []
