"""Course publishing: validate, snapshot a version, mark it published (later: extract, chunk, embed, index)."""
