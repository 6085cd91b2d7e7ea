"""The content pipeline's pure parts: text extraction, structure-aware chunking (embedders live in adapters)."""
