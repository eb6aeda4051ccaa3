"""Sigma semantics of the compiled predicates, one case per behaviour."""

from __future__ import annotations

import textwrap
from typing import Any

import pytest
from sigma.collection import SigmaCollection

from enricher.detector import Detector
from enricher.rules.compiler import EventContext, compile_rule
from enricher.rules.fieldmap import FieldMapping
from enricher.rules.loader import load_rules
from enricher.rules.logsource import LogsourceTable

MAPPING = FieldMapping.default()


def rule_predicate(detection: str):
    text = textwrap.dedent(
        """
        title: test
        id: 00000000-0000-0000-0000-000000000001
        logsource:
            category: process_creation
            product: windows
        detection:
        """
    ) + textwrap.indent(textwrap.dedent(detection), "    ")
    rule = SigmaCollection.from_yaml(text).rules[0]
    predicate = compile_rule(rule)
    return lambda event: predicate(EventContext(event, MAPPING))


SEMANTICS = [
    # (name, detection YAML, event, expected)
    ("equality ignores case", "sel:\n  Image: 'C:\\Windows\\cmd.exe'\ncondition: sel",
     {"process": {"executable": "c:\\WINDOWS\\CMD.EXE"}}, True),
    ("equality is whole value", "sel:\n  Image: 'cmd.exe'\ncondition: sel",
     {"process": {"executable": "C:\\cmd.exe"}}, False),
    ("endswith needs backslash", "sel:\n  ParentImage|endswith: '\\EdgeTransport.exe'\ncondition: sel",
     {"process": {"parent": {"executable": "C:\\x\\NotEdgeTransport.exe"}}}, False),
    ("endswith ignores case", "sel:\n  ParentImage|endswith: '\\EdgeTransport.exe'\ncondition: sel",
     {"process": {"parent": {"executable": "C:\\Bin\\edgetransport.exe"}}}, True),
    ("startswith", "sel:\n  Image|startswith: 'C:\\Program Files\\'\ncondition: sel",
     {"process": {"executable": "c:\\program files\\x.exe"}}, True),
    ("contains", "sel:\n  CommandLine|contains: 'whoami'\ncondition: sel",
     {"process": {"command_line": "cmd /c WHOAMI /all"}}, True),
    ("value list is or", "sel:\n  Image|endswith:\n    - '\\a.exe'\n    - '\\b.exe'\ncondition: sel",
     {"process": {"executable": "C:\\b.exe"}}, True),
    ("map is and", "sel:\n  Image|endswith: '\\a.exe'\n  CommandLine|contains: 'x'\ncondition: sel",
     {"process": {"executable": "C:\\a.exe", "command_line": "y"}}, False),
    ("list of maps is or", "sel:\n  - Image|endswith: '\\a.exe'\n  - CommandLine|contains: 'x'\ncondition: sel",
     {"process": {"executable": "C:\\b.exe", "command_line": "x"}}, True),
    ("all turns list into and", "sel:\n  CommandLine|contains|all:\n    - 'a'\n    - 'b'\ncondition: sel",
     {"process": {"command_line": "xa"}}, False),
    ("all over contains matches", "sel:\n  CommandLine|contains|all:\n    - 'a'\n    - 'b'\ncondition: sel",
     {"process": {"command_line": "B then A"}}, True),
    ("star wildcard", "sel:\n  Image: 'C:\\\\*\\\\cmd.exe'\ncondition: sel",
     {"process": {"executable": "C:\\Windows\\System32\\cmd.exe"}}, True),
    ("backslash before star escapes it", "sel:\n  Image: 'C:\\*\\cmd.exe'\ncondition: sel",
     {"process": {"executable": "C:\\Windows\\cmd.exe"}}, False),
    ("question mark wildcard", "sel:\n  Image: 'C:\\cm?.exe'\ncondition: sel",
     {"process": {"executable": "C:\\cmd.exe"}}, True),
    ("question mark is one char", "sel:\n  Image: 'C:\\cm?.exe'\ncondition: sel",
     {"process": {"executable": "C:\\cmdd.exe"}}, False),
    ("escaped star is literal", "sel:\n  CommandLine: 'a\\*b'\ncondition: sel",
     {"process": {"command_line": "a*b"}}, True),
    ("escaped star not wildcard", "sel:\n  CommandLine: 'a\\*b'\ncondition: sel",
     {"process": {"command_line": "axxb"}}, False),
    ("double backslash then wildcard", "sel:\n  CommandLine: 'a\\\\*'\ncondition: sel",
     {"process": {"command_line": "a\\anything"}}, True),
    ("trailing backslash is literal", "sel:\n  CommandLine: 'dir\\'\ncondition: sel",
     {"process": {"command_line": "dir\\"}}, True),
    ("unicode case folding", "sel:\n  CommandLine|contains: 'STRASSE'\ncondition: sel",
     {"process": {"command_line": "straße"}}, True),
    ("not over missing field is true", "sel:\n  Image|endswith: '\\a.exe'\ncondition: not sel",
     {"host": {"name": "x"}}, True),
    ("missing field is not empty", "sel:\n  CommandLine: ''\ncondition: sel",
     {"process": {"executable": "C:\\a.exe"}}, False),
    ("empty string matches empty", "sel:\n  CommandLine: ''\ncondition: sel",
     {"process": {"command_line": ""}}, True),
    ("null matches missing", "sel:\n  CommandLine: null\ncondition: sel",
     {"process": {"executable": "C:\\a.exe"}}, True),
    ("null matches json null", "sel:\n  CommandLine: null\ncondition: sel",
     {"process": {"command_line": None}}, True),
    ("null rejects empty string", "sel:\n  CommandLine: null\ncondition: sel",
     {"process": {"command_line": ""}}, False),
    ("array any element", "sel:\n  CommandLine|contains: 'evil'\ncondition: sel",
     {"process": {"command_line": ["good", "EVIL here"]}}, True),
    ("one of filter prefix",
     "sel:\n  Image|endswith: '\\a.exe'\nfilter_1:\n  CommandLine: 'x'\nfilter_2:\n  CommandLine: 'y'\n"
     "condition: sel and not 1 of filter_*",
     {"process": {"executable": "C:\\a.exe", "command_line": "y"}}, False),
    ("all of them",
     "sel_a:\n  Image|endswith: '\\a.exe'\nsel_b:\n  CommandLine: 'x'\ncondition: all of them",
     {"process": {"executable": "C:\\a.exe", "command_line": "x"}}, True),
    ("them skips underscore names",
     "sel_a:\n  Image|endswith: '\\a.exe'\n_hidden:\n  CommandLine: 'never'\ncondition: all of them",
     {"process": {"executable": "C:\\a.exe", "command_line": "x"}}, True),
    ("precedence not and or",
     "a:\n  Image: 'x'\nb:\n  Image: 'y'\nc:\n  Image: 'z'\ncondition: a or b and not c",
     {"process": {"executable": "x"}}, True),
    ("brackets override precedence",
     "a:\n  Image: 'x'\nb:\n  Image: 'y'\nc:\n  CommandLine: 'z'\ncondition: (a or b) and c",
     {"process": {"executable": "x"}}, False),
    ("number equals string field", "sel:\n  EventID: 4688\ncondition: sel",
     {"winlog": {"event_id": "4688"}}, True),
    ("keyword searches all strings", "keywords:\n  - 'mimikatz'\ncondition: keywords",
     {"message": "ran Mimikatz.exe"}, True),
    ("keyword all across fields", "keywords:\n  '|all':\n    - 'alpha'\n    - 'beta'\ncondition: keywords",
     {"a": "alpha one", "b": {"c": "BETA two"}}, True),
]


@pytest.mark.parametrize(
    ("detection", "event", "expected"),
    [case[1:] for case in SEMANTICS],
    ids=[case[0] for case in SEMANTICS],
)
def test_sigma_semantics(detection: str, event: dict[str, Any], expected: bool) -> None:
    assert rule_predicate(detection)(event) is expected


FIELD_SHAPES = [
    ("nested", {"process": {"parent": {"executable": "C:\\B\\EdgeTransport.exe"}}}),
    ("dotted", {"process.parent.executable": "C:\\B\\EdgeTransport.exe"}),
    ("mixed", {"process": {"parent.executable": "C:\\B\\EdgeTransport.exe"}}),
    ("raw winlogbeat", {"winlog": {"event_data": {"ParentImage": "C:\\B\\EdgeTransport.exe"}}}),
    ("raw 4688", {"winlog": {"event_data": {"ParentProcessName": "C:\\B\\EdgeTransport.exe"}}}),
    ("flat sysmon", {"ParentImage": "C:\\B\\EdgeTransport.exe"}),
    ("flat 4688", {"ParentProcessName": "C:\\B\\EdgeTransport.exe"}),
    ("array of objects", {"process": [{"parent": {"executable": "x"}}, {"parent": {"executable": "C:\\B\\EdgeTransport.exe"}}]}),
]


@pytest.mark.parametrize("event", [shape[1] for shape in FIELD_SHAPES], ids=[shape[0] for shape in FIELD_SHAPES])
def test_default_rule_field_shapes(event: dict[str, Any]) -> None:
    detector = Detector(load_rules(), MAPPING, LogsourceTable.load())
    assert [rule.id for rule in detector.match(event)] == ["797011dc-44f4-4e6f-9f10-a8ceefbe566b"]


def test_ecs_field_wins_over_raw() -> None:
    # The first mapped source the event has supplies the value, so a raw
    # field cannot make an ECS event match.
    predicate = rule_predicate("sel:\n  ParentImage|endswith: '\\EdgeTransport.exe'\ncondition: sel")
    event = {
        "process": {"parent": {"executable": "C:\\Windows\\explorer.exe"}},
        "winlog": {"event_data": {"ParentImage": "C:\\B\\EdgeTransport.exe"}},
    }
    assert predicate(event) is False


@pytest.mark.parametrize(
    ("image", "expected"),
    [
        ("C:\\Windows\\System32\\cmd.exe", True),
        ("C:\\Windows\\System32\\conhost.exe", False),
        ("c:\\windows\\system32\\CONHOST.EXE", False),
        ("C:\\Program Files\\Microsoft\\Exchange Server\\V15\\Bin\\OleConverter.exe", False),
        ("C:\\Program Files\\Microsoft\\Exchange Server\\V15\\Bin\\other\\OleConverter.exe", True),
        ("D:\\Exchange\\Bin\\OleConverter.exe", True),
    ],
)
def test_default_rule_filters(image: str, expected: bool) -> None:
    detector = Detector(load_rules(), MAPPING, LogsourceTable.load())
    event = {"process": {"executable": image, "parent": {"executable": "C:\\Bin\\EdgeTransport.exe"}}}
    assert bool(detector.match(event)) is expected


def test_default_rule_missing_image_still_matches() -> None:
    # 4688 events from older Windows have no parent; events without Image
    # still match when the parent matches, since both filters need Image.
    detector = Detector(load_rules(), MAPPING, LogsourceTable.load())
    assert detector.match({"ParentImage": "C:\\Bin\\EdgeTransport.exe"})
