"""Kibana and OpenSearch Dashboards saved objects for the alerts index, shipped as package data."""
