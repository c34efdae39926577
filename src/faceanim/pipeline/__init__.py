"""Pipelines: prepare a source once, then motion → render → paste back per frame."""
