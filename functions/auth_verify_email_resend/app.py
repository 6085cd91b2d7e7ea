"""POST /auth/verify-email/resend: the caller's own account; e-mails the link confirming its address again."""

from fastapi import APIRouter, Response

from smartcourse.api.app import lambda_handler
from smartcourse.api.deps import ContainerDep, CurrentUser
from smartcourse.ratelimit import rate_limiter
from smartcourse.schemas import VerificationResent
from smartcourse.services import accounts
from smartcourse.tasks import enqueue_email_verification

router = APIRouter(tags=["auth"])


@router.post(
    "/auth/verify-email/resend",
    status_code=202,
    response_model=VerificationResent,
    responses={200: {"model": VerificationResent, "description": "the address is confirmed already: nothing sent"}},
)
async def resend_verification(user: CurrentUser, c: ContainerDep, response: Response) -> VerificationResent:
    async with c.uow() as uow:
        sent = await accounts.resend_verification(
            uow=uow, settings=c.settings, principal=user, verify=enqueue_email_verification, limiter=rate_limiter(c)
        )
    if not sent:
        response.status_code = 200
        return VerificationResent(sent=False, message="this account's address is confirmed already")
    days = c.settings.email_verification_days
    return VerificationResent(
        sent=True, message=f"a confirmation link is on its way to your address (valid {days} days)"
    )


handler = lambda_handler(router)
