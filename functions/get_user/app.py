"""GET /users/{user_id}: an account, for its owner or an admin."""

import uuid

from fastapi import APIRouter, Depends

from smartcourse.api.app import lambda_handler, refuse_unknown_query
from smartcourse.api.deps import ContainerDep, CurrentUser
from smartcourse.schemas import UserPublic
from smartcourse.services import accounts

router = APIRouter(tags=["users"], dependencies=[Depends(refuse_unknown_query)])


@router.get("/users/{user_id:uuid}", response_model=UserPublic)
async def get_user(user_id: uuid.UUID, user: CurrentUser, c: ContainerDep) -> UserPublic:
    async with c.uow() as uow:
        return await accounts.get_user(uow=uow, principal=user, user_id=user_id)


handler = lambda_handler(router)
