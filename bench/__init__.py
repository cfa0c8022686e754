"""Benchmarks side by side with peers: `python -m bench` (or `make bench`), `--quick` for a short subset.

The bench ingests the sources into PostGIS and the embedded GeoPackage (timing each ingest and its
peak memory), serves them as the Procfile does, serves the same PostGIS tables with TiPg and
pygeoapi, and the same tile bytes as static files with nginx, then loads each in turn with wrk
from 127.0.0.1. It prints one table with ratios to each peer and writes
`bench/results/<date>-<commit>.json`. See `bench.suite` for the phases.
"""
