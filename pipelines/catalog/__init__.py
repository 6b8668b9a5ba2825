"""The catalog domain: store rows -> Meta items -> changes -> feed files and batch requests.

Pure logic only (no Dagster, no HTTP): `normalise`, `diff`, `feed`, `generator`.
"""
