"""Alerts appended to a local NDJSON file, the default when no cluster is configured."""

from __future__ import annotations

import asyncio
import errno
import fcntl
import logging
import os
from pathlib import Path
from typing import Any

import orjson

from enricher.sinks.base import SinkUnavailable, WriteResult

logger = logging.getLogger(__name__)


class FileSink:
    """Append-only NDJSON alert file, safe for several worker processes.

    Each write takes an exclusive ``flock``, reads the lines other processes
    appended since the last write, and skips alert ids already in the file, so
    a replayed batch adds no second line.
    """

    def __init__(self, path: Path, dead_letter_path: Path) -> None:
        self.path = Path(path)
        self.dead_letter_path = Path(dead_letter_path)
        self.description = f"file {self.path}"
        self._seen: set[str] = set()
        self._offset = 0
        self._lock = asyncio.Lock()

    async def start(self) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.path.touch(exist_ok=True)
        except OSError as error:
            raise SinkUnavailable(f"cannot open alert file {self.path}: {error}") from error
        logger.info("writing alerts to %s", self.path)

    async def write(self, alerts: list[dict[str, Any]]) -> WriteResult:
        if not alerts:
            return WriteResult()
        async with self._lock:
            try:
                return await asyncio.to_thread(self._append_alerts, alerts)
            except OSError as error:
                raise SinkUnavailable(f"cannot write alert file {self.path}: {error}") from error

    def _append_alerts(self, alerts: list[dict[str, Any]]) -> WriteResult:
        result = WriteResult()
        with open(self.path, "a+b") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                self._read_new_ids(handle)
                lines = []
                for alert in alerts:
                    document_id = alert["event"]["id"]
                    if document_id in self._seen:
                        result.duplicates += 1
                        continue
                    self._seen.add(document_id)
                    lines.append(orjson.dumps(alert) + b"\n")
                if lines:
                    handle.seek(0, os.SEEK_END)
                    handle.write(b"".join(lines))
                    _flush_to_disk(handle)
                    self._offset = handle.tell()
                result.written = len(lines)
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)
        return result

    def _read_new_ids(self, handle: Any) -> None:
        handle.seek(0, os.SEEK_END)
        end = handle.tell()
        if end < self._offset:
            # The file was truncated or replaced: start over.
            self._seen.clear()
            self._offset = 0
        if end == self._offset:
            return
        handle.seek(self._offset)
        for line in handle.read(end - self._offset).splitlines():
            try:
                self._seen.add(orjson.loads(line)["event"]["id"])
            except (orjson.JSONDecodeError, KeyError, TypeError):
                continue
        self._offset = end

    async def write_dead_letters(self, records: list[dict[str, Any]]) -> None:
        if not records:
            return
        data = b"".join(orjson.dumps(record) + b"\n" for record in records)
        try:
            await asyncio.to_thread(self._append, self.dead_letter_path, data)
        except OSError as error:
            raise SinkUnavailable(f"cannot write dead-letter file {self.dead_letter_path}: {error}") from error

    @staticmethod
    def _append(path: Path, data: bytes) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "ab") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            handle.write(data)
            _flush_to_disk(handle)

    async def ping(self) -> bool:
        return os.access(self.path.parent if not self.path.exists() else self.path, os.W_OK)

    async def close(self) -> None:
        return None


def _flush_to_disk(handle: Any) -> None:
    handle.flush()
    try:
        os.fsync(handle.fileno())
    except OSError as error:
        # Character devices and pipes (--output /dev/null) cannot be synced.
        if error.errno != errno.EINVAL:
            raise
