"""POST /auth/verify-email: anyone with the code a sign-up e-mailed; proves the account's address is its owner's."""

from fastapi import APIRouter

from smartcourse.api.app import lambda_handler
from smartcourse.api.deps import ContainerDep
from smartcourse.schemas import UserPublic, VerifyEmailIn
from smartcourse.services import accounts

router = APIRouter(tags=["auth"])


@router.post("/auth/verify-email", response_model=UserPublic)
async def verify_email(body: VerifyEmailIn, c: ContainerDep) -> UserPublic:
    async with c.uow() as uow:
        return await accounts.verify_email(uow=uow, settings=c.settings, token=body.token)


handler = lambda_handler(router)
