"""POST /auth/register: create a student or instructor account, and e-mail it the link that confirms its address."""

from fastapi import APIRouter, Request, Response

from smartcourse.api.app import lambda_handler
from smartcourse.api.created import LOCATION, created_at
from smartcourse.api.deps import ContainerDep
from smartcourse.ratelimit import client_ip, rate_limiter
from smartcourse.schemas import RegisterIn, UserPublic
from smartcourse.services import accounts
from smartcourse.tasks import enqueue_email_verification

router = APIRouter(tags=["auth"])


@router.post("/auth/register", status_code=201, response_model=UserPublic, responses={201: {"headers": LOCATION}})
async def register(body: RegisterIn, c: ContainerDep, request: Request, response: Response) -> UserPublic:
    async with c.uow() as uow:
        user = await accounts.register(
            uow=uow,
            data=body,
            settings=c.settings,
            limiter=rate_limiter(c),
            client_ip=client_ip(request),
            verify=enqueue_email_verification,
        )
    created_at(response, f"/users/{user.id}")
    return user


handler = lambda_handler(router)
