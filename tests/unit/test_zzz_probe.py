from typing import Any
async def test_probe(container: Any) -> None:
    print("\nPROBE", container.settings.database_url)
