"""Who is calling: a plain value the domain's rules take (the token that carries it is `smartcourse.security`'s)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass


@dataclass(frozen=True)
class Principal:
    """Who is calling: the verified claims of an access token (role and version re-checked per request)."""

    user_id: uuid.UUID
    role: str
    token_version: int = 0

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"
