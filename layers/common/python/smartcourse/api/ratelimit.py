"""The HTTP side of rate limiting: a FastAPI dependency over the limiter in `smartcourse.ratelimit`."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Literal

from fastapi import Depends, Request

from smartcourse.api.deps import ContainerDep, OptionalUser
from smartcourse.ratelimit import client_ip, enforce, rate_limiter


def limit(
    scope: str, rate: str | Callable[[Any], str], *, per: Literal["user", "ip"] = "user"
) -> Callable[..., Awaitable[None]]:
    """A FastAPI dependency enforcing `rate` (or `rate(settings)`) per caller (user id, or client IP if anonymous)."""

    async def _dep(request: Request, container: ContainerDep, principal: OptionalUser) -> None:
        who = str(principal.user_id) if (per == "user" and principal is not None) else client_ip(request)
        value = rate(container.settings) if callable(rate) else rate
        enforce(await rate_limiter(container).hit((scope, per, who), value))

    _dep.__name__ = f"rate_limit_{scope}"
    # Real objects, not the strings `from __future__ import annotations` leaves: FastAPI resolves string
    # annotations in this module's globals, where these local imports are not.
    _dep.__annotations__ = {"request": Request, "container": ContainerDep, "principal": OptionalUser, "return": None}
    return Depends(_dep)  # type: ignore[no-any-return]
