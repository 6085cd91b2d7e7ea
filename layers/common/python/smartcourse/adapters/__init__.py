"""Adapters: one module per technology, each behind a small port."""
