"""POST /auth/login: exchange email and password for an access and a refresh token."""

from fastapi import APIRouter, Request

from smartcourse.api.app import lambda_handler
from smartcourse.api.deps import ContainerDep
from smartcourse.ratelimit import backoff, client_ip, rate_limiter
from smartcourse.schemas import LoginIn, TokenPair
from smartcourse.services import accounts

router = APIRouter(tags=["auth"])


@router.post("/auth/login", response_model=TokenPair)
async def login(body: LoginIn, c: ContainerDep, request: Request) -> TokenPair:
    async with c.uow() as uow:
        return await accounts.login(
            uow=uow,
            settings=c.settings,
            email=body.email,
            password=body.password,
            limiter=rate_limiter(c),
            backoff=backoff(c),
            client_ip=client_ip(request),
            device_token=body.device_token,
        )


handler = lambda_handler(router)
