"""The learning assistant: a LangGraph graph (rewrite → retrieve → route → answer with checked citations)."""
