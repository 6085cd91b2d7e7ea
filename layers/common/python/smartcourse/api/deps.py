"""FastAPI dependencies: the container, the caller, pagination."""

from __future__ import annotations

import hmac
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from smartcourse.bootstrap import Container, get_container
from smartcourse.domain.principal import refuse_unverified
from smartcourse.errors import DomainError, Unauthorized
from smartcourse.ratelimit import enforce, rate_limiter
from smartcourse.security import Principal, decode_access_token
from smartcourse.services import accounts

_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
#: What an account whose address is not proved may still change with `EMAIL_VERIFICATION=required`: itself (its
#: confirmation, its sessions, its profile, its erasure) and its notifications.
_OWN_ACCOUNT = ("/auth/", "/users/", "/notifications")
_bearer = HTTPBearer(auto_error=False, description="The access token from POST /auth/login")


async def _container() -> Container:
    return await get_container()


ContainerDep = Annotated[Container, Depends(_container)]


async def _optional_principal(
    container: ContainerDep,
    request: Request,
    creds: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal | None:
    if creds is None:
        if request.headers.get("authorization"):
            raise Unauthorized("the Authorization header must be 'Bearer <token>'", code="invalid_token")
        return None
    claims = decode_access_token(container.settings, creds.credentials)
    # A signature is not enough: the account must still exist, be active, and not have ended its sessions.
    # One read on its own needs no transaction (autocommit: one round trip instead of BEGIN, SELECT, ROLLBACK) and
    # no ORM session: a bare pooled connection.
    async with container.engine.connect() as conn:
        await conn.execution_options(isolation_level="AUTOCOMMIT")
        principal = await accounts.check_account(conn, claims)
    request.state.principal = principal
    if request.method not in _SAFE_METHODS:
        if container.settings.email_verification == "required" and not request.url.path.startswith(_OWN_ACCOUNT):
            # An account whose address nobody proved reads, and changes nothing but itself: an enrollment made
            # before the switch, or by an admin, earned a certificate, and a draft was edited (explore85 F2).
            refuse_unverified(principal)
        per_minute = container.settings.rate_limit_per_minute
        decision = await rate_limiter(container).hit(("write", "user", str(principal.user_id)), f"{per_minute}/minute")
        enforce(decision, "too many changes in a short time; retry later")
    return principal


async def _signed_caller(
    container: ContainerDep,
    request: Request,
    creds: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal | None:
    """The verified *claims* of the caller's token (signature, expiry, issuer), not yet checked against the
    account: for reads whose answer to most callers is public (the catalogue), which check the account only
    where the answer is not (services/courses.py read_course, catalogue_page)."""
    if creds is None:
        if request.headers.get("authorization"):
            raise Unauthorized("the Authorization header must be 'Bearer <token>'", code="invalid_token")
        return None
    return decode_access_token(container.settings, creds.credentials)


async def _principal(principal: Annotated[Principal | None, Depends(_optional_principal)]) -> Principal:
    if principal is None:
        raise Unauthorized("authentication required", code="not_authenticated")
    return principal


async def ops_allowed(container: Container, request: Request) -> bool:
    """May this request see operational detail (/metrics, /docs, detailed /health)?

    Outside production: yes. In production: with `Authorization: Bearer <METRICS_TOKEN>` (or an
    `X-Metrics-Token` header), or an admin's access token.
    """
    if not container.settings.is_production:
        return True
    auth = request.headers.get("authorization", "")
    presented = auth[7:].strip() if auth.lower().startswith("bearer ") else ""
    expected = container.settings.metrics_token
    for candidate in (presented, request.headers.get("x-metrics-token", "")):
        if expected and candidate and hmac.compare_digest(candidate.encode(), expected.encode()):
            return True
    if not presented:
        return False
    try:
        claims = decode_access_token(container.settings, presented)
        async with container.uow() as uow:
            return (await accounts.authenticate(uow=uow, claims=claims)).is_admin
    except DomainError:
        return False


async def _ops(container: ContainerDep, request: Request) -> bool:
    return await ops_allowed(container, request)


CurrentUser = Annotated[Principal, Depends(_principal)]
OpsAccess = Annotated[bool, Depends(_ops)]
OptionalUser = Annotated[Principal | None, Depends(_optional_principal)]
SignedCaller = Annotated[Principal | None, Depends(_signed_caller)]

#: `openapi_extra` of a route that takes `SignedCaller`: FastAPI declares its bearer scheme as required, and the
#: empty requirement added here (FastAPI appends lists) says that calling without a token is allowed too.
PUBLIC_OR_SIGNED: dict[str, Any] = {"security": [{}]}
