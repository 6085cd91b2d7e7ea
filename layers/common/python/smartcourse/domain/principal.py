"""Who is calling: a plain value the domain's rules take (the token that carries it is `smartcourse.security`'s)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from smartcourse.errors import Forbidden


@dataclass(frozen=True)
class Principal:
    """Who is calling: the verified claims of an access token (role and version re-checked per request)."""

    user_id: uuid.UUID
    role: str
    token_version: int = 0
    #: Whether the account's address was proved its owner's (`users.email_verified_at`), as read per request; a token's
    #: own claims say nothing of it (True until the account is read).
    email_verified: bool = True

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


def refuse_unverified(principal: Principal) -> None:
    """An account whose address is not proved yet is refused (403 `email_not_verified`), with
    `EMAIL_VERIFICATION=required` (its caller's check); admins never are (explore82 F1: a sign-up under anyone's
    address enrolled, made and published courses at once)."""
    if not principal.email_verified and not principal.is_admin:
        raise Forbidden(
            "confirm your e-mail address first: until then this account reads, and changes nothing but itself; "
            "follow the link the sign-up e-mailed you (POST /auth/verify-email/resend sends it again)",
            code="email_not_verified",
        )
