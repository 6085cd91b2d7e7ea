"""Certificate codes: short, unguessable, unambiguous to read aloud or type."""

from __future__ import annotations

import base64
import secrets

_ALPHABET_FIX = str.maketrans({"0": "8", "1": "9"})  # base32 has no 0/1; keep it that way after formatting


def new_code() -> str:
    """`SC-XXXX-XXXX-XXXX-XXXX`: 80 random bits in Crockford-free base32, grouped for humans."""
    raw = base64.b32encode(secrets.token_bytes(10)).decode().rstrip("=")
    return "SC-" + "-".join(raw[i : i + 4] for i in range(0, 16, 4))


def normalize_code(code: str) -> str:
    return code.strip().upper().replace(" ", "")


_GROUP = "([A-Za-z2-7] *){4}"
#: What `normalize_code` and the server's check accept, as the OpenAPI shows it (ECMA-262: no inline flags):
#: `SC-XXXX-XXXX-XXXX-XXXX` in any case, the `SC` and the dashes optional, spaces anywhere (explore13 F5).
CODE_PATTERN = rf"^\s*([Ss] *[Cc] *(- *)?)?{_GROUP}(- *)?{_GROUP}(- *)?{_GROUP}(- *)?{_GROUP}\s*$"
