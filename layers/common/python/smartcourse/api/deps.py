"""FastAPI dependencies: the container, the caller, pagination."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from smartcourse.bootstrap import Container, get_container
from smartcourse.errors import Unauthorized
from smartcourse.security import Principal, decode_access_token

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
    principal = decode_access_token(container.settings, creds.credentials)
    request.state.principal = principal
    return principal


async def _principal(principal: Annotated[Principal | None, Depends(_optional_principal)]) -> Principal:
    if principal is None:
        raise Unauthorized("authentication required", code="not_authenticated")
    return principal


CurrentUser = Annotated[Principal, Depends(_principal)]
OptionalUser = Annotated[Principal | None, Depends(_optional_principal)]
