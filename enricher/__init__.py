"""Streaming Sigma detection for Elastic and OpenSearch log pipelines."""

__version__ = "0.1.0"
