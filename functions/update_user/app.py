"""PUT /users/{user_id}: change name, bio or password (owner or admin); enable, disable or change the role (admin)."""

import uuid

from fastapi import APIRouter

from smartcourse.api.app import lambda_handler
from smartcourse.api.deps import ContainerDep, CurrentUser
from smartcourse.ratelimit import backoff
from smartcourse.schemas import UserUpdated, UserUpdateIn
from smartcourse.services import accounts

router = APIRouter(tags=["users"])


@router.put("/users/{user_id:uuid}", response_model=UserUpdated)
async def update_user(user_id: uuid.UUID, body: UserUpdateIn, user: CurrentUser, c: ContainerDep) -> UserUpdated:
    async with c.uow() as uow:
        return await accounts.update_user(
            uow=uow, principal=user, user_id=user_id, data=body, backoff=backoff(c), settings=c.settings
        )


handler = lambda_handler(router)
