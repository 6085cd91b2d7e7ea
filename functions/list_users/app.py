"""GET /users: accounts, newest first or by name, found by e-mail, by part of an address or name, or by role (admin)."""

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query

from smartcourse.api.app import lambda_handler, refuse_unknown_query
from smartcourse.api.deps import ContainerDep, CurrentUser
from smartcourse.api.filters import FILLED, UserStatesFilter, user_states
from smartcourse.api.paging import DEFAULT_PAGE_SIZE, Page, PageSize
from smartcourse.schemas import INSTANT_NOTE, UPDATED_SINCE, UserPage
from smartcourse.services import accounts

router = APIRouter(tags=["users"], dependencies=[Depends(refuse_unknown_query)])


@router.get("/users", response_model=UserPage)
async def list_users(
    user: CurrentUser,
    c: ContainerDep,
    email: Annotated[
        str | None, Query(max_length=320, pattern=FILLED, description="the address, any case (not blank)")
    ] = None,
    q: Annotated[
        str | None,
        Query(
            max_length=200, pattern=FILLED, description="part of an address or a name (not blank; any case or accent)"
        ),
    ] = None,
    role: Literal["student", "instructor", "admin"] | None = None,
    state: UserStatesFilter = None,
    sort: Annotated[
        Literal["newest", "name"],
        Query(description="newest first (the default) or by name, accents and case aside"),
    ] = "newest",
    updated_since: Annotated[datetime | None, Query(description=UPDATED_SINCE + INSTANT_NOTE)] = None,
    page: Page = 1,
    page_size: PageSize = DEFAULT_PAGE_SIZE,
) -> UserPage:
    async with c.uow() as uow:
        return await accounts.list_users(
            uow=uow,
            principal=user,
            email=email,
            q=q,
            role=role,
            states=user_states(state),
            page=page,
            page_size=page_size,
            sort=sort,
            updated_since=updated_since,
        )


handler = lambda_handler(router)
