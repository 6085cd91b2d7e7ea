"""Imported first by every bench script that starts the product: the script, and every process it starts, run the
code of the tree the script is in, not whatever tree the virtualenv's editable install points at.

Benchmarks compare commits side by side from git worktrees (`git worktree add --detach /tmp/bt-old <commit>`, then
`/work/main/.venv/bin/python bench/enrollment.py ...` from there). Without this, `import smartcourse` in the
script and in its children resolved through the editable install to the main checkout, so both sides of an
A/B ran the same code (found 2026-12-03; bench/workflow_cost.py always did this itself)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

TREE = Path(__file__).resolve().parents[1]
PATHS = [str(TREE), str(TREE / "layers" / "common" / "python")]

sys.path[:0] = [p for p in PATHS if p not in sys.path[: len(PATHS)]]
os.environ["PYTHONPATH"] = os.pathsep.join([*PATHS, *filter(None, [os.environ.get("PYTHONPATH", "")])])
