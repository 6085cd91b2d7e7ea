"""POST /auth/refresh: rotate a refresh token; a reused one revokes the whole login."""

from fastapi import APIRouter

from smartcourse.api.app import lambda_handler
from smartcourse.api.deps import ContainerDep
from smartcourse.schemas import RefreshIn, TokenPair
from smartcourse.services import accounts

router = APIRouter(tags=["auth"])


@router.post("/auth/refresh", response_model=TokenPair)
async def refresh(body: RefreshIn, c: ContainerDep) -> TokenPair:
    async with c.uow() as uow:
        return await accounts.refresh(uow=uow, settings=c.settings, refresh_token=body.refresh_token)


handler = lambda_handler(router)
