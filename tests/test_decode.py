"""Request bodies as Logstash's http output sends them."""

from __future__ import annotations

import gzip

import pytest

from enricher.decode import BodyError, BodyTooLarge, UnsupportedEncoding, decode_body, gunzip, inflate


def test_json_single_object() -> None:
    decoded = decode_body(b'{"a": 1}')
    assert decoded.events == [{"a": 1}]
    assert decoded.dead_letters == []


def test_json_batch_array() -> None:
    decoded = decode_body(b'[{"a": 1}, {"b": 2}]')
    assert decoded.events == [{"a": 1}, {"b": 2}]


def test_ndjson_lines_with_crlf() -> None:
    decoded = decode_body(b'{"a": 1}\r\n{"b": 2}\r\n')
    assert decoded.events == [{"a": 1}, {"b": 2}]


def test_batch_non_objects_become_dead_letters() -> None:
    decoded = decode_body(b'[{"a": 1}, 5, "text", null, {"b": 2}]')
    assert decoded.events == [{"a": 1}, {"b": 2}]
    assert [letter.position for letter in decoded.dead_letters] == ["element 1", "element 2", "element 3"]
    assert decoded.dead_letters[1].raw == '"text"'


def test_ndjson_bad_line_kept_rest_processed() -> None:
    decoded = decode_body(b'{"a": 1}\n{broken\n{"b": 2}\n')
    assert decoded.events == [{"a": 1}, {"b": 2}]
    assert decoded.dead_letters[0].position == "line 2"
    assert decoded.dead_letters[0].raw == "{broken"


def test_invalid_json_reports_position() -> None:
    with pytest.raises(BodyError) as raised:
        decode_body(b'{"a": 1,, }')
    assert raised.value.position == 8
    assert "line 1 column 9" in str(raised.value)


def test_no_json_line_is_body_error() -> None:
    with pytest.raises(BodyError):
        decode_body(b"not json\nstill not\n")


def test_scalar_body_is_body_error() -> None:
    with pytest.raises(BodyError):
        decode_body(b"42")


def test_gzip_inflated() -> None:
    body = gzip.compress(b'[{"a": 1}]')
    assert decode_body(inflate(body, "gzip", 1024)).events == [{"a": 1}]


def test_gzip_concatenated_members() -> None:
    body = gzip.compress(b'{"a": 1}\n') + gzip.compress(b'{"b": 2}\n')
    assert decode_body(gunzip(body, 1024)).events == [{"a": 1}, {"b": 2}]


def test_gzip_bomb_stopped_at_limit() -> None:
    body = gzip.compress(b" " * 10_000_000)
    with pytest.raises(BodyTooLarge):
        inflate(body, "gzip", 1_000_000)


def test_truncated_gzip_rejected() -> None:
    body = gzip.compress(b'{"a": 1}' * 100)[:-12]
    with pytest.raises(BodyError):
        inflate(body, "gzip", 1024 * 1024)


def test_unknown_encoding_rejected() -> None:
    with pytest.raises(UnsupportedEncoding):
        inflate(b"x", "br", 1024)
