"""The candidate index never changes what matches."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import read_ndjson
from enricher.detector import Detector
from enricher.rules.fieldmap import FieldMapping
from enricher.rules.loader import RuleSet, load_rules
from enricher.rules.logsource import LogsourceTable

EVENT_FILES = [
    "ecs/process_creation.ecs.ndjson.gz",
    "winlogbeat_raw/process_creation.winlogbeat_raw.ndjson.gz",
    "sysmon_fields/process_creation.flat.ndjson.gz",
    "sigma_regression/sigma_regression_process_creation.ecs.ndjson",
    "sigma_regression/sigma_regression_process_creation.winlogbeat_raw.ndjson",
    "sigma_regression/sigma_regression_process_creation.flat.ndjson",
]


@pytest.fixture(scope="module")
def corpus(shared_data: Path) -> RuleSet:
    rules = shared_data / "sigma-rules"
    return load_rules([rules / "process_creation", rules / "other_process_creation"])


@pytest.mark.parametrize("name", EVENT_FILES)
def test_indexed_equals_naive(name: str, shared_data: Path, corpus: RuleSet) -> None:
    events = read_ndjson(shared_data / "events" / name)
    mapping = FieldMapping.default()
    logsources = LogsourceTable.load()
    indexed = Detector(corpus, mapping, logsources, indexed=True)
    naive = Detector(corpus, mapping, logsources, indexed=False)
    differences = []
    for number, event in enumerate(events):
        expected = [rule.id for rule in naive.match(event)]
        found = [rule.id for rule in indexed.match(event)]
        if found != expected:
            differences.append((number, expected, found))
    assert differences == []


KEYWORD_RULE = r"""
title: keyword test
id: 00000000-0000-0000-0000-00000000000b
logsource: {category: process_creation, product: windows}
detection:
    keywords:
        - '\perfc.dat'
        - 'say "hi"'
        - 'STRASSE'
    condition: keywords
"""


@pytest.mark.parametrize(
    ("event", "expected"),
    [
        ({"CommandLine": "rundll32 C:\\Windows\\perfc.dat,#1"}, True),
        ({"a": {"b": ["x", "they say \"HI\" here"]}}, True),
        ({"note": "straße"}, True),
        ({"\\perfc.dat": "the literal is only a key"}, False),
        ({"CommandLine": "perfc.dat without the backslash"}, False),
    ],
    ids=["backslash", "quote in nested list", "case folding", "key only", "absent"],
)
def test_keyword_index_equals_naive(tmp_path, event: dict, expected: bool) -> None:
    rule_file = tmp_path / "keyword.yml"
    rule_file.write_text(KEYWORD_RULE)
    rules = load_rules([rule_file])
    indexed = Detector(rules, FieldMapping.default(), None, indexed=True)
    naive = Detector(rules, FieldMapping.default(), None, indexed=False)
    assert bool(naive.match(event)) is expected
    assert bool(indexed.match(event)) is expected
