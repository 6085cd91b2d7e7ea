"""POST /auth/login: exchange email and password for an access and a refresh token."""

from fastapi import APIRouter

from smartcourse.api.app import lambda_handler
from smartcourse.api.deps import ContainerDep
from smartcourse.schemas import LoginIn, TokenPair
from smartcourse.services import accounts

router = APIRouter(tags=["auth"])


@router.post("/auth/login", response_model=TokenPair)
async def login(body: LoginIn, c: ContainerDep) -> TokenPair:
    async with c.uow() as uow:
        return await accounts.login(uow=uow, settings=c.settings, email=body.email, password=body.password)


handler = lambda_handler(router)
