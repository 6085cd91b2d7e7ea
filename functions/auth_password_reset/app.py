"""POST /auth/password-reset: anyone; e-mails a reset code to the address's account, if it has one (202 either way)."""

from fastapi import APIRouter, Request

from smartcourse.api.app import lambda_handler
from smartcourse.api.deps import ContainerDep
from smartcourse.ratelimit import client_ip, rate_limiter
from smartcourse.schemas import PasswordResetIn, PasswordResetRequested
from smartcourse.services import accounts
from smartcourse.tasks import enqueue_password_reset

router = APIRouter(tags=["auth"])


@router.post("/auth/password-reset", status_code=202, response_model=PasswordResetRequested)
async def request_password_reset(body: PasswordResetIn, c: ContainerDep, request: Request) -> PasswordResetRequested:
    await accounts.request_password_reset(
        settings=c.settings,
        email=str(body.email),
        enqueue=enqueue_password_reset,
        limiter=rate_limiter(c),
        client_ip=client_ip(request),
    )
    minutes = c.settings.password_reset_minutes
    return PasswordResetRequested(
        message=f"if an account has this address, a reset code is on its way to it (valid {minutes} minutes)"
    )


handler = lambda_handler(router)
