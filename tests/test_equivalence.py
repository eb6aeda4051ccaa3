"""The candidate index and the batch-level raw test never change what matches."""

from __future__ import annotations

from pathlib import Path

import orjson
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


@pytest.mark.parametrize("name", EVENT_FILES[:3])
def test_raw_test_never_hides_a_match(name: str, shared_data: Path) -> None:
    detector = Detector(load_rules(), FieldMapping.default(), LogsourceTable.load())
    assert detector.may_match_raw(b"[]") is False
    for event in read_ndjson(shared_data / "events" / name):
        if detector.match(event):
            assert detector.may_match_raw(orjson.dumps(event))


def test_raw_test_sees_true_positive_forms(exchange_events) -> None:
    from conftest import true_positive_variants

    detector = Detector(load_rules(), FieldMapping.default(), LogsourceTable.load())
    variants = [event for _name, _form, event in true_positive_variants(exchange_events)]
    for event in variants:
        assert detector.may_match_raw(orjson.dumps(event))
    batch = orjson.dumps(exchange_events["ecs"])
    assert detector.may_match_raw(batch) is False
    assert detector.match_batch(exchange_events["ecs"], batch) == [[] for _ in exchange_events["ecs"]]


@pytest.mark.parametrize(
    "raw",
    [
        # LATIN SMALL LETTER LONG S case-folds to "s".
        '{"ParentImage": "C:\\\\B\\\\EdgeTran\u017fport.exe"}'.encode(),
        # KELVIN SIGN case-folds to "k"; no literal here has a k, but the raw
        # test cannot know that and must not answer False.
        '{"ParentImage": "C:\\\\B\\\\EdgeTransport.exe", "x": "\u212a"}'.encode(),
        # A JSON \\u escape spells a letter the raw bytes do not show.
        b'{"ParentImage": "C:\\\\B\\\\\\u0045dgeTransport.exe"}',
    ],
    ids=["long s", "kelvin sign", "unicode escape"],
)
def test_raw_test_defers_to_events(raw: bytes) -> None:
    detector = Detector(load_rules(), FieldMapping.default(), LogsourceTable.load())
    event = orjson.loads(raw)
    assert detector.match(event)
    assert detector.may_match_raw(raw) is True


def test_folds_to_ascii_table_complete() -> None:
    from enricher.detector import _FOLDS_TO_ASCII

    computed = {
        chr(code).encode()
        for code in range(0x80, 0x110000)
        if not 0xD800 <= code <= 0xDFFF and any(ord(char) < 0x80 for char in chr(code).casefold())
    }
    assert set(_FOLDS_TO_ASCII) == computed
