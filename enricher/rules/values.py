"""Matchers for single Sigma values, each a function of the values a field holds.

A matcher gets the list of values a field resolved to (arrays already
flattened) and returns True when any of them matches. Fields that are missing
never reach a value matcher; the detection item decides what a missing field
means.
"""

from __future__ import annotations

import ipaddress
import logging
import re
from collections.abc import Callable
from datetime import datetime
from typing import Any

import re2
import regex
from sigma.types import (
    CompareOperators,
    Placeholder,
    SigmaBool,
    SigmaCasedString,
    SigmaCIDRExpression,
    SigmaCompareExpression,
    SigmaNumber,
    SigmaRegularExpression,
    SigmaRegularExpressionFlag,
    SigmaString,
    SigmaTimestampPart,
    SpecialChars,
    TimestampPart,
)


ValueMatcher = Callable[[list[Any]], bool]

logger = logging.getLogger(__name__)


class UnsupportedValue(ValueError):
    """A Sigma value this engine cannot evaluate; the rule is rejected at load."""


def text_of(value: Any) -> str | None:
    """Return the text form Sigma compares a field value with, or None for non-scalars."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    return None


def string_test(value: SigmaString) -> Callable[[str], bool]:
    """Compile a Sigma string with wildcards into a test of one text.

    Unless the value came through the ``cased`` modifier, the test expects
    case-folded text (Unicode case folding), so callers fold each field value
    once per event and share it across rules.
    """
    cased = isinstance(value, SigmaCasedString)
    parts: list[str | SpecialChars] = []
    for part in value.s:
        if isinstance(part, Placeholder):
            raise UnsupportedValue(f"placeholder %{part.name}% was not expanded")
        if isinstance(part, str) and not cased:
            part = part.casefold()
        parts.append(part)
    return _text_test(parts)


def string_shape(value: SigmaString) -> tuple[str, str] | None:
    """Classify a case-insensitive string as ("equals" | "prefix" | "suffix" | "contains", folded literal).

    Returns None for cased strings and other wildcard patterns; those keep
    their own test.
    """
    if isinstance(value, SigmaCasedString):
        return None
    star = SpecialChars.WILDCARD_MULTI
    parts = list(value.s)
    if any(isinstance(part, Placeholder) or part is SpecialChars.WILDCARD_SINGLE for part in parts):
        return None
    if len(parts) == 0:
        return ("equals", "")
    if len(parts) == 1 and isinstance(parts[0], str):
        return ("equals", parts[0].casefold())
    if len(parts) == 2 and parts[0] is star and isinstance(parts[1], str):
        return ("suffix", parts[1].casefold())
    if len(parts) == 2 and isinstance(parts[0], str) and parts[1] is star:
        return ("prefix", parts[0].casefold())
    if len(parts) == 3 and parts[0] is star and isinstance(parts[1], str) and parts[2] is star:
        return ("contains", parts[1].casefold())
    return None


def _text_test(parts: list[str | SpecialChars]) -> Callable[[str], bool]:
    star = SpecialChars.WILDCARD_MULTI
    if SpecialChars.WILDCARD_SINGLE in parts:
        pieces = []
        for part in parts:
            if part is star:
                pieces.append(".*")
            elif part is SpecialChars.WILDCARD_SINGLE:
                pieces.append(".")
            else:
                pieces.append(re.escape(part))
        pattern = "".join(pieces)
        compiled = re.compile(pattern, re.DOTALL)
        return lambda text: compiled.fullmatch(text) is not None

    literals = [part for part in parts if isinstance(part, str)]
    if not any(part is star for part in parts):
        literal = "".join(literals)
        return lambda text: text == literal
    if parts == [star]:
        return lambda text: True
    if len(parts) == 2 and parts[0] is star:
        suffix = parts[1]
        return lambda text: text.endswith(suffix)
    if len(parts) == 2 and parts[1] is star:
        prefix = parts[0]
        return lambda text: text.startswith(prefix)
    if len(parts) == 3 and parts[0] is star and parts[2] is star:
        needle = parts[1]
        return lambda text: needle in text
    return _segments_test(parts)


def _segments_test(parts: list[str | SpecialChars]) -> Callable[[str], bool]:
    """Match literals separated by ``*`` in order: first anchored left, last anchored right."""
    star = SpecialChars.WILDCARD_MULTI
    anchored_start = parts[0] is not star
    anchored_end = parts[-1] is not star
    literals = [part for part in parts if isinstance(part, str)]

    def test(text: str) -> bool:
        position = 0
        end_limit = len(text)
        middle = literals
        if anchored_start:
            if not text.startswith(literals[0]):
                return False
            position = len(literals[0])
            middle = middle[1:]
        if anchored_end:
            last = literals[-1]
            if len(text) - len(last) < position or not text.endswith(last):
                return False
            end_limit = len(text) - len(last)
            middle = middle[:-1]
        for literal in middle:
            found = text.find(literal, position, end_limit)
            if found < 0:
                return False
            position = found + len(literal)
        return True

    return test


def number_matcher(value: SigmaNumber) -> ValueMatcher:
    number = value.number
    text = text_of(number)

    def match(values: list[Any]) -> bool:
        for item in values:
            if isinstance(item, bool):
                continue
            if isinstance(item, (int, float)) and item == number:
                return True
            if isinstance(item, str) and item.strip() == text:
                return True
        return False

    return match


def bool_matcher(value: SigmaBool) -> ValueMatcher:
    expected = value.boolean
    expected_text = "true" if expected else "false"

    def match(values: list[Any]) -> bool:
        for item in values:
            if isinstance(item, bool) and item is expected:
                return True
            if isinstance(item, str) and item.casefold() == expected_text:
                return True
        return False

    return match


REGEX_TIMEOUT_SECONDS = 0.05
"""Time bound for one search with a pattern RE2 cannot run (backreferences, lookaround)."""


def regex_matcher(value: SigmaRegularExpression) -> ValueMatcher:
    """Compile a ``re`` value; it searches anywhere in the value, like SigmaHQ rules expect.

    SigmaHQ rules anchor with ``^`` and ``$`` where they mean the whole value,
    so an unanchored search is the reading that fits the corpus. Patterns from
    rules are untrusted input: RE2 runs them in time linear in the value. The
    few it cannot compile run on the ``regex`` module with a time bound per
    search. A search that times out counts as no match and is logged.
    """
    pattern = str(value.regexp)
    flags = ""
    if SigmaRegularExpressionFlag.IGNORECASE in value.flags:
        flags += "i"
    if SigmaRegularExpressionFlag.MULTILINE in value.flags:
        flags += "m"
    if SigmaRegularExpressionFlag.DOTALL in value.flags:
        flags += "s"
    if flags:
        pattern = f"(?{flags}){pattern}"
    search = _compile_regex(pattern)

    def match(values: list[Any]) -> bool:
        for item in values:
            text = text_of(item)
            if text is not None and search(text):
                return True
        return False

    return match


def _compile_regex(pattern: str) -> Callable[[str], bool]:
    options = re2.Options()
    options.log_errors = False
    try:
        compiled = re2.compile(pattern, options)
    except re2.error:
        return _bounded_regex(pattern)
    return lambda text: compiled.search(text) is not None


def _bounded_regex(pattern: str) -> Callable[[str], bool]:
    try:
        compiled = regex.compile(pattern, regex.VERSION0)
    except regex.error as error:
        raise UnsupportedValue(f"invalid regular expression {pattern!r}: {error}") from error

    def search(text: str) -> bool:
        try:
            return compiled.search(text, timeout=REGEX_TIMEOUT_SECONDS) is not None
        except TimeoutError:
            logger.warning(
                "regular expression %r timed out after %s s on a value of %d characters; counted as no match",
                pattern,
                REGEX_TIMEOUT_SECONDS,
                len(text),
            )
            return False

    return search


def cidr_matcher(value: SigmaCIDRExpression) -> ValueMatcher:
    network = value.network

    def match(values: list[Any]) -> bool:
        for item in values:
            if not isinstance(item, str):
                continue
            try:
                address = ipaddress.ip_address(item.strip().split("%", 1)[0])
            except ValueError:
                continue
            if address.version == network.version and address in network:
                return True
        return False

    return match


_COMPARE = {
    CompareOperators.LT: lambda left, right: left < right,
    CompareOperators.LTE: lambda left, right: left <= right,
    CompareOperators.GT: lambda left, right: left > right,
    CompareOperators.GTE: lambda left, right: left >= right,
    CompareOperators.NEQ: lambda left, right: left != right,
}


def as_number(item: Any) -> int | float | None:
    if isinstance(item, bool):
        return None
    if isinstance(item, (int, float)):
        return item
    if isinstance(item, str):
        text = item.strip()
        try:
            return int(text, 0) if text.lower().startswith(("0x", "0o", "0b")) else int(text)
        except ValueError:
            pass
        try:
            return float(text)
        except ValueError:
            return None
    return None


def compare_matcher(value: SigmaCompareExpression) -> ValueMatcher:
    operator = _COMPARE[value.op]
    bound = value.number.number

    def match(values: list[Any]) -> bool:
        for item in values:
            number = as_number(item)
            if number is not None and operator(number, bound):
                return True
        return False

    return match


def timestamp_part_matcher(value: SigmaTimestampPart) -> ValueMatcher:
    part = value.timestamp_part
    expected = value.number

    def match(values: list[Any]) -> bool:
        for item in values:
            moment = _parse_time(item)
            if moment is not None and _time_part(moment, part) == expected:
                return True
        return False

    return match


def _parse_time(item: Any) -> datetime | None:
    if isinstance(item, str):
        text = item.strip().replace("Z", "+00:00")
        # Python 3.11 reads up to 6 fractional digits; Logstash writes up to 9.
        text = re.sub(r"(\.\d{6})\d+", r"\1", text)
        try:
            return datetime.fromisoformat(text)
        except ValueError:
            return None
    return None


def _time_part(moment: datetime, part: TimestampPart) -> int:
    if part is TimestampPart.MINUTE:
        return moment.minute
    if part is TimestampPart.HOUR:
        return moment.hour
    if part is TimestampPart.DAY:
        return moment.day
    if part is TimestampPart.WEEK:
        return moment.isocalendar().week
    if part is TimestampPart.MONTH:
        return moment.month
    return moment.year
