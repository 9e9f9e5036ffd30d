"""Tests of the PostgreSQL results store (`edgebench.results.pg`) against a real server."""
