"""POST /auth/logout: revoke a refresh token (idempotent)."""

from fastapi import APIRouter, Response

from smartcourse.api.app import lambda_handler
from smartcourse.api.deps import ContainerDep
from smartcourse.schemas import RefreshIn
from smartcourse.services import accounts

router = APIRouter(tags=["auth"])


@router.post("/auth/logout", status_code=204, response_class=Response)
async def logout(body: RefreshIn, c: ContainerDep) -> Response:
    async with c.uow() as uow:
        await accounts.logout(uow=uow, refresh_token=body.refresh_token)
    return Response(status_code=204)


handler = lambda_handler(router)
