"""POST /auth/password-reset/confirm: anyone with an e-mailed reset code; sets a new password, ends every session."""

from fastapi import APIRouter, Response

from smartcourse.api.app import lambda_handler
from smartcourse.api.deps import ContainerDep
from smartcourse.ratelimit import backoff
from smartcourse.schemas import PasswordResetConfirmIn
from smartcourse.services import accounts

router = APIRouter(tags=["auth"])


@router.post("/auth/password-reset/confirm", status_code=204, response_class=Response)
async def confirm_password_reset(body: PasswordResetConfirmIn, c: ContainerDep) -> Response:
    async with c.uow() as uow:
        await accounts.reset_password(
            uow=uow, settings=c.settings, token=body.token, password=body.password, backoff=backoff(c)
        )
    return Response(status_code=204)


handler = lambda_handler(router)
