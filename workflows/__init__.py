"""Temporal workflows: deterministic orchestration; every side effect is an activity."""
