"""GET /users/{user_id}/changes: what admins did to an account, newest first (admins)."""

import uuid

from fastapi import APIRouter, Depends

from smartcourse.api.app import lambda_handler, refuse_unknown_query
from smartcourse.api.deps import ContainerDep, CurrentUser
from smartcourse.api.paging import DEFAULT_PAGE_SIZE, Page, PageSize
from smartcourse.schemas import AccountChangePage
from smartcourse.services import accounts

router = APIRouter(tags=["users"], dependencies=[Depends(refuse_unknown_query)])


@router.get("/users/{user_id:uuid}/changes", response_model=AccountChangePage)
async def user_changes(
    user_id: uuid.UUID, user: CurrentUser, c: ContainerDep, page: Page = 1, page_size: PageSize = DEFAULT_PAGE_SIZE
) -> AccountChangePage:
    """Made, renamed, disabled or enabled, its role or address changed, its password reset, erased: by which admin
    and when (a password as reset, never its value; an erased account's name and address as "erased")."""
    async with c.uow() as uow:
        return await accounts.list_changes(uow=uow, principal=user, user_id=user_id, page=page, page_size=page_size)


handler = lambda_handler(router)
