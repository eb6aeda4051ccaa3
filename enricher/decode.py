"""Decode request bodies and files into events.

Accepted forms, as Logstash's ``http`` output sends them: one JSON object
(``format => json``), a JSON array (``format => json_batch``) and NDJSON, each
optionally gzip-compressed. Elements that are not JSON objects are returned
as dead letters with their position; the rest is processed.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field
from typing import Any

import orjson


class BodyError(ValueError):
    """A body that cannot be decoded at all; ``position`` is a byte offset when known."""

    def __init__(self, message: str, position: int | None = None) -> None:
        super().__init__(message)
        self.position = position


class BodyTooLarge(BodyError):
    """A body whose decompressed size exceeds the configured limit."""


class UnsupportedEncoding(BodyError):
    """A Content-Encoding other than gzip or identity."""


@dataclass
class DeadLetter:
    """One element of a body that is not a JSON object, kept with its position."""

    position: str
    reason: str
    raw: str


@dataclass
class Decoded:
    events: list[dict[str, Any]] = field(default_factory=list)
    dead_letters: list[DeadLetter] = field(default_factory=list)
    # True when the body was one JSON object rather than an array or NDJSON.
    single_object: bool = False


def inflate(body: bytes, content_encoding: str | None, max_bytes: int) -> bytes:
    """Undo ``Content-Encoding: gzip``, stopping at ``max_bytes`` of output."""
    encoding = (content_encoding or "identity").strip().lower()
    if encoding in ("", "identity"):
        if len(body) > max_bytes:
            raise BodyTooLarge(f"body of {len(body)} bytes exceeds the limit of {max_bytes} bytes")
        return body
    if encoding not in ("gzip", "x-gzip", "deflate"):
        raise UnsupportedEncoding(f"unsupported Content-Encoding {content_encoding!r}; send gzip or no encoding")
    return gunzip(body, max_bytes, deflate=encoding == "deflate")


def gunzip(data: bytes, max_bytes: int, deflate: bool = False) -> bytes:
    # wbits 32+15 reads gzip or zlib headers; a bounded max_length stops
    # decompression bombs before they fill memory.
    decompressor = zlib.decompressobj(32 + 15 if not deflate else 15)
    output = []
    size = 0
    pending = data
    try:
        while pending:
            chunk = decompressor.decompress(pending, max_bytes + 1 - size)
            size += len(chunk)
            output.append(chunk)
            if size > max_bytes:
                raise BodyTooLarge(f"decompressed body exceeds the limit of {max_bytes} bytes")
            pending = decompressor.unconsumed_tail
            if decompressor.eof:
                # Concatenated gzip members are valid gzip; read the next one.
                pending = decompressor.unused_data
                if pending:
                    decompressor = zlib.decompressobj(32 + 15)
            elif not chunk and not pending:
                break
    except zlib.error as error:
        raise BodyError(f"invalid gzip body: {error}") from error
    if not decompressor.eof:
        raise BodyError("invalid gzip body: the compressed stream is truncated")
    return b"".join(output)


def decode_body(body: bytes) -> Decoded:
    """Decode a JSON object, a JSON array or NDJSON into events and dead letters.

    Raises ``BodyError`` with the byte position when no element is JSON.
    """
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError as error:
        stripped = body.strip()
        if not stripped:
            return Decoded()
        if b"\n" not in stripped:
            raise BodyError(f"invalid JSON at line {error.lineno} column {error.colno}: {error.msg}", error.pos) from error
        return decode_ndjson(stripped, strict=True)

    result = Decoded()
    if isinstance(document, list):
        for index, element in enumerate(document):
            if isinstance(element, dict):
                result.events.append(element)
            else:
                result.dead_letters.append(
                    DeadLetter(f"element {index}", f"expected a JSON object, found {_type_name(element)}", orjson.dumps(element).decode())
                )
    elif isinstance(document, dict):
        result.events.append(document)
        result.single_object = True
    else:
        raise BodyError(f"expected a JSON object, array of objects or NDJSON, found {_type_name(document)}", 0)
    return result


def decode_ndjson(data: bytes, strict: bool = False) -> Decoded:
    """Decode NDJSON lines; lines that are not JSON objects become dead letters.

    With ``strict``, a body where no line is JSON raises ``BodyError`` at the
    first bad line instead.
    """
    result = Decoded()
    first_error: BodyError | None = None
    offset = 0
    for number, line in enumerate(data.split(b"\n"), start=1):
        line_start = offset
        offset += len(line) + 1
        line = line.strip()
        if not line:
            continue
        try:
            element = orjson.loads(line)
        except orjson.JSONDecodeError as error:
            if first_error is None:
                first_error = BodyError(f"invalid JSON at line {number} column {error.colno}: {error.msg}", line_start + error.pos)
            result.dead_letters.append(DeadLetter(f"line {number}", f"invalid JSON: {error.msg}", line.decode("utf-8", "replace")))
            continue
        if isinstance(element, dict):
            result.events.append(element)
        else:
            result.dead_letters.append(
                DeadLetter(f"line {number}", f"expected a JSON object, found {_type_name(element)}", line.decode("utf-8", "replace"))
            )
    if strict and not result.events and first_error is not None:
        raise first_error
    return result


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return type(value).__name__
