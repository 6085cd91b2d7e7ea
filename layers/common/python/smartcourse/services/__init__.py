"""Use cases: one transaction each, keyword-only, framework-free."""
