"""The assistant graph: guard → rewrite → retrieve → route → (generate ⇄ check | fallback) / clarify / refuse."""

from __future__ import annotations

from functools import cache
from typing import Any

from langgraph.graph import END, START, StateGraph

from smartcourse.assistant import nodes
from smartcourse.assistant.state import AskState


def _after_guard(state: AskState) -> str:
    return "finish" if state.get("route") == "refuse" else "rewrite"


def _after_route(state: AskState) -> str:
    return "generate" if state["route"] == "answer" else "finish"


def _after_check(state: AskState) -> str:
    if state.get("answer"):
        return END
    return "generate" if state.get("attempts", 0) < 2 else "fallback"


@cache
def build_graph() -> Any:
    """Compiled once per process; collaborators come in with each run's config (see Configuration)."""
    g = StateGraph(AskState)
    g.add_node("guard", nodes.guard_input)
    g.add_node("rewrite", nodes.rewrite)
    g.add_node("retrieve", nodes.retrieve)
    g.add_node("route", nodes.route)
    g.add_node("generate", nodes.generate)
    g.add_node("check", nodes.check)
    g.add_node("fallback", nodes.fallback)
    g.add_node("finish", nodes.finish_without_answer)
    g.add_edge(START, "guard")
    g.add_conditional_edges("guard", _after_guard, ["rewrite", "finish"])
    g.add_edge("rewrite", "retrieve")
    g.add_edge("retrieve", "route")
    g.add_conditional_edges("route", _after_route, ["generate", "finish"])
    g.add_edge("generate", "check")
    g.add_conditional_edges("check", _after_check, ["generate", "fallback", END])
    g.add_edge("fallback", END)
    g.add_edge("finish", END)
    return g.compile()
