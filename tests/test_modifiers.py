"""Every Sigma modifier pySigma parses, one case per behaviour and its edges."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import pytest
from sigma.collection import SigmaCollection

from enricher.rules.compiler import EventContext, RuleCompileError, compile_rule
from enricher.rules.fieldmap import FieldMapping
from enricher.rules.loader import load_placeholders, load_rules

MAPPING = FieldMapping.default()
RULE_HEAD = """
title: modifier test
id: 00000000-0000-0000-0000-000000000002
logsource: {category: process_creation, product: windows}
detection:
"""


def predicate_for(selection: str, condition: str = "sel", placeholders: dict[str, list[str]] | None = None):
    body = "  sel:\n" + "".join(f"    {line}\n" for line in selection.splitlines()) + f"  condition: {condition}\n"
    rule = SigmaCollection.from_yaml(RULE_HEAD + body).rules[0]
    predicate = compile_rule(rule, placeholders)
    return lambda event: predicate(EventContext(event, MAPPING))


def b64(text: str, encoding: str = "utf-8") -> str:
    return base64.b64encode(text.encode(encoding)).decode()


CASES = [
    # (name, selection, event, expected)
    ("base64 exact", "CommandLine|base64: 'whoami'", {"CommandLine": b64("whoami")}, True),
    ("base64 contains", "CommandLine|base64|contains: 'http'", {"CommandLine": "x " + b64("http") + " y"}, True),
    ("base64offset offset 1", "CommandLine|base64offset|contains: 'http://'",
     {"CommandLine": "-enc " + b64("Xhttp://evil")}, True),
    ("base64offset offset 2", "CommandLine|base64offset|contains: 'http://'",
     {"CommandLine": "-enc " + b64("XYhttp://evil")}, True),
    ("base64offset absent", "CommandLine|base64offset|contains: 'http://'",
     {"CommandLine": "-enc " + b64("https:/nothing")}, False),
    ("wide base64offset", "CommandLine|wide|base64offset|contains: 'ping'",
     {"CommandLine": "-e " + b64("Xping 1", "utf-16le")}, True),
    ("utf16le alias of wide", "CommandLine|utf16le|base64offset|contains: 'ping'",
     {"CommandLine": "-e " + b64("ping", "utf-16le")}, True),
    ("utf16be", "CommandLine|utf16be|base64offset|contains: 'ping'",
     {"CommandLine": "-e " + b64("ping", "utf-16-be")}, True),
    ("utf16 plain text", "CommandLine|utf16|contains: 'pi'", {"CommandLine": "\ufeffp\x00i\x00"}, True),
    ("windash slash", "CommandLine|windash|contains: ' -enc '", {"CommandLine": "powershell /enc AAA"}, True),
    ("windash en dash", "CommandLine|windash|contains: ' -enc '", {"CommandLine": "powershell \u2013enc AAA"}, True),
    ("windash em dash", "CommandLine|windash|contains: ' -enc '", {"CommandLine": "powershell \u2014enc AAA"}, True),
    ("windash horizontal bar", "CommandLine|windash|contains: ' -enc '", {"CommandLine": "powershell \u2015enc AAA"}, True),
    ("windash inner dash kept", "CommandLine|windash|contains: ' -no-profile'", {"CommandLine": "x /no/profile"}, False),
    ("re searches inside", "CommandLine|re: 'whoami\\s+/all'", {"CommandLine": "cmd /c whoami  /all"}, True),
    ("re is case sensitive", "CommandLine|re: 'WHOAMI'", {"CommandLine": "whoami"}, False),
    ("re i flag", "CommandLine|re|i: 'WHOAMI'", {"CommandLine": "whoami"}, True),
    ("re m flag", "CommandLine|re|m: '^b$'", {"CommandLine": "a\nb\nc"}, True),
    ("re without m", "CommandLine|re: '^b$'", {"CommandLine": "a\nb\nc"}, False),
    ("re s flag", "CommandLine|re|s: 'a.b'", {"CommandLine": "a\nb"}, True),
    ("re without s", "CommandLine|re: 'a.b'", {"CommandLine": "a\nb"}, False),
    ("re backreference bounded engine", "CommandLine|re: '(ab)\\1'", {"CommandLine": "xabab"}, True),
    ("re lookahead bounded engine", "CommandLine|re: 'foo(?!bar)'", {"CommandLine": "foobar"}, False),
    ("cidr ipv4", "DestinationIp|cidr: '10.0.0.0/8'", {"DestinationIp": "10.1.2.3"}, True),
    ("cidr ipv4 outside", "DestinationIp|cidr: '10.0.0.0/8'", {"DestinationIp": "11.1.2.3"}, False),
    ("cidr ipv6", "DestinationIp|cidr: 'fe80::/10'", {"DestinationIp": "fe80::1"}, True),
    ("cidr ipv6 outside", "DestinationIp|cidr: 'fe80::/10'", {"DestinationIp": "2001:db8::1"}, False),
    ("cidr v6 rule v4 value", "DestinationIp|cidr: '::/0'", {"DestinationIp": "10.0.0.1"}, False),
    ("exists true", "CommandLine|exists: true", {"CommandLine": ""}, True),
    ("exists true missing", "CommandLine|exists: true", {"Image": "x"}, False),
    ("exists false missing", "CommandLine|exists: false", {"Image": "x"}, True),
    ("exists null value", "CommandLine|exists: true", {"CommandLine": None}, False),
    ("cased matches exact case", "CommandLine|cased: 'Whoami'", {"CommandLine": "Whoami"}, True),
    ("cased rejects other case", "CommandLine|cased|contains: 'Whoami'", {"CommandLine": "x whoami"}, False),
    ("lt", "TerminalSessionId|lt: 2", {"TerminalSessionId": "1"}, True),
    ("lte equal", "TerminalSessionId|lte: 2", {"TerminalSessionId": 2}, True),
    ("gt false", "TerminalSessionId|gt: 2", {"TerminalSessionId": 2}, False),
    ("gte hex string", "ProcessId|gte: 16", {"ProcessId": "0x10"}, True),
    ("compare non number", "ProcessId|gt: 1", {"ProcessId": "many"}, False),
    ("neq different", "CommandLine|neq: 'a'", {"CommandLine": "b"}, True),
    ("neq equal", "CommandLine|neq: 'a'", {"CommandLine": "A"}, False),
    ("fieldref equal", "Image|fieldref: ParentImage", {"Image": "C:\\a.exe", "ParentImage": "c:\\A.EXE"}, True),
    ("fieldref different", "Image|fieldref: ParentImage", {"Image": "C:\\a.exe", "ParentImage": "C:\\b.exe"}, False),
    ("fieldref missing other", "Image|fieldref: ParentImage", {"Image": "C:\\a.exe"}, False),
    ("fieldref endswith", "CommandLine|fieldref|endswith: Image", {"CommandLine": "run C:\\a.exe", "Image": "C:\\a.exe"}, True),
    ("fieldref startswith", "CommandLine|fieldref|startswith: Image", {"CommandLine": "C:\\a.exe /x", "Image": "C:\\a.exe"}, True),
    ("fieldref contains", "CommandLine|fieldref|contains: Image", {"CommandLine": "x C:\\a.exe y", "Image": "C:\\a.exe"}, True),
    ("hour part", "'@timestamp|hour': 1", {"@timestamp": "2021-03-14T01:40:13.412Z"}, True),
    ("minute part", "'@timestamp|minute': 41", {"@timestamp": "2021-03-14T01:40:13.412Z"}, False),
    ("day month year", "'@timestamp|day': 14\n'@timestamp|month': 3\n'@timestamp|year': 2021",
     {"@timestamp": "2021-03-14T01:40:13.123456789Z"}, True),
    ("week part", "'@timestamp|week': 10", {"@timestamp": "2021-03-14T01:40:13Z"}, True),
    ("null with not", "CommandLine: null", {"CommandLine": "x"}, False),
    ("all over windash", "CommandLine|windash|contains|all:\n  - ' -a'\n  - ' -b'", {"CommandLine": "x /a /b"}, True),
    ("all over windash needs both", "CommandLine|windash|contains|all:\n  - ' -a'\n  - ' -b'", {"CommandLine": "x /a"}, False),
]


@pytest.mark.parametrize(("selection", "event", "expected"), [case[1:] for case in CASES], ids=[case[0] for case in CASES])
def test_modifier(selection: str, event: dict[str, Any], expected: bool) -> None:
    assert predicate_for(selection)(event) is expected


def test_expand_uses_placeholder_values() -> None:
    predicate = predicate_for("CommandLine|expand: '%domain%\\admin'", placeholders={"domain": ["CONTOSO", "FABRIKAM"]})
    assert predicate({"CommandLine": "fabrikam\\admin"}) is True
    assert predicate({"CommandLine": "other\\admin"}) is False


def test_expand_without_value_rejected() -> None:
    with pytest.raises(RuleCompileError, match="placeholder %domain% has no value"):
        predicate_for("CommandLine|expand: '%domain%'")


def test_percent_without_expand_is_literal() -> None:
    predicate = predicate_for("CommandLine|contains: '%userdomain%'")
    assert predicate({"CommandLine": "echo %USERDOMAIN%"}) is True


def test_placeholders_file_loads_rule(tmp_path: Path) -> None:
    rule = tmp_path / "rule.yml"
    rule.write_text(RULE_HEAD + "  sel:\n    CommandLine|expand: '%domain%'\n  condition: sel\n")
    assert load_rules([rule]).errors[0].reason.endswith("define it in a placeholders file (--placeholders)")
    placeholders_file = tmp_path / "placeholders.yml"
    placeholders_file.write_text("placeholders:\n  domain: [CONTOSO]\n")
    loaded = load_rules([rule], placeholders=load_placeholders(placeholders_file))
    assert loaded.errors == []
    assert len(loaded.rules) == 1


def test_regex_timeout_counts_as_no_match(monkeypatch: pytest.MonkeyPatch) -> None:
    from enricher.rules import values

    monkeypatch.setattr(values, "REGEX_TIMEOUT_SECONDS", 0.001)
    # Catastrophic backtracking; the backreference keeps it off RE2.
    predicate = predicate_for("CommandLine|re: '(a|a)*\\1b'")
    assert predicate({"CommandLine": "a" * 5000}) is False


def test_utf16_base64_rejected() -> None:
    with pytest.raises(RuleCompileError, match="use wide"):
        predicate_for("CommandLine|utf16|base64|contains: 'ping'")


def test_unknown_modifier_rejected_with_name(tmp_path: Path) -> None:
    rule = tmp_path / "rule.yml"
    rule.write_text(RULE_HEAD + "  sel:\n    CommandLine|nosuch: 'x'\n  condition: sel\n")
    (error,) = load_rules([rule]).errors
    assert "nosuch" in error.reason
    assert error.source == str(rule)
