"""Alert sinks: a local NDJSON file, Elasticsearch or OpenSearch."""

from enricher.sinks.base import AlertSink, SinkUnavailable, WriteResult

__all__ = ["AlertSink", "SinkUnavailable", "WriteResult"]
