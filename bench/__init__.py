"""Benchmarks: search, ingest and processing, each beside a baseline measured in the same run."""
