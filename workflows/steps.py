"""Step bookkeeping shared by the workflows: the list `GET /workflows/{id}` shows, through the `steps` query."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


class Steps:
    """Each step's name, status (pending, running, completed, failed, skipped) and error."""

    def __init__(self, names: Sequence[str]) -> None:
        self.items: list[dict[str, Any]] = [{"name": n, "status": "pending", "error": None} for n in names]

    def running(self, index: int) -> None:
        self.items[index]["status"] = "running"

    def completed(self, index: int, detail: dict[str, Any] | None = None) -> None:
        self.items[index]["status"] = "completed"
        if detail:
            self.items[index]["detail"] = detail

    def failed(self, index: int, error: str) -> None:
        self.items[index].update(status="failed", error=error)
        self.skip_after(index)

    def skip_after(self, index: int) -> None:
        for later in self.items[index + 1 :]:
            later["status"] = "skipped"
