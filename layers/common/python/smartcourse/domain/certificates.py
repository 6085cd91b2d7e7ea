"""Certificate codes: short, unguessable, unambiguous to read aloud or type."""

from __future__ import annotations

import base64
import secrets

#: Digits base32 (A-Z, 2-7) never uses, typed for the letter they look like on paper: 0 for O, 1 for I, 8 for B
#: (explore36 F5: "…-HMJ0" was refused as malformed).
_LOOK_ALIKES = str.maketrans({"0": "O", "1": "I", "8": "B"})


def new_code() -> str:
    """`SC-XXXX-XXXX-XXXX-XXXX`: 80 random bits in Crockford-free base32, grouped for humans."""
    raw = base64.b32encode(secrets.token_bytes(10)).decode().rstrip("=")
    return "SC-" + "-".join(raw[i : i + 4] for i in range(0, 16, 4))


def normalize_code(code: str) -> str:
    """A typed code as stored: upper case, no spaces, the look-alike digits read as their letters."""
    return code.strip().upper().replace(" ", "").translate(_LOOK_ALIKES)


_GROUP = "([A-Za-z0-8] *){4}"
#: What `normalize_code` and the server's check accept, as the OpenAPI shows it (ECMA-262: no inline flags):
#: `SC-XXXX-XXXX-XXXX-XXXX` in any case, the `SC` and the dashes optional, spaces anywhere (explore13 F5), 0, 1 and 8
#: read as O, I and B.
CODE_PATTERN = rf"^\s*([Ss] *[Cc] *(- *)?)?{_GROUP}(- *)?{_GROUP}(- *)?{_GROUP}(- *)?{_GROUP}\s*$"


#: How an enrollment's history records a revocation: `REVOKED_HISTORY: <reason>`.
REVOKED_HISTORY = "certificate revoked"


def revoked_history(reason: str) -> str:
    return f"{REVOKED_HISTORY}: {reason}"


def history_reason_for_others(from_status: str, to_status: str, reason: str | None) -> str | None:
    """A history entry's reason as the course's instructor reads it: why a certificate was revoked is for its student
    and admins (the instructor sees that it was, and when: explore39 F3, explore44 F1). A revocation's entry is the
    only one from `completed` to `completed`: a drop whose reason a student wrote as "certificate revoked: …" keeps
    it (explore45 F7)."""
    revocation = from_status == to_status == "completed"
    if revocation and reason is not None and reason.startswith(f"{REVOKED_HISTORY}:"):
        return REVOKED_HISTORY
    return reason
