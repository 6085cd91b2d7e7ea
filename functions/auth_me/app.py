"""GET /auth/me: the caller's own account."""

from fastapi import APIRouter

from smartcourse.api.app import lambda_handler
from smartcourse.api.deps import ContainerDep, CurrentUser
from smartcourse.schemas import UserPublic
from smartcourse.services import accounts

router = APIRouter(tags=["auth"])


@router.get("/auth/me", response_model=UserPublic)
async def me(user: CurrentUser, c: ContainerDep) -> UserPublic:
    async with c.uow() as uow:
        return await accounts.get_user(uow=uow, principal=user, user_id=user.user_id)


handler = lambda_handler(router)
