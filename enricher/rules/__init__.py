"""Sigma rules: loading with pySigma, field mapping and compilation to predicates."""
