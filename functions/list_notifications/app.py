"""GET /notifications: the caller's notifications, newest first; `before` pages back (keyset), `unread` filters."""

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response

from smartcourse.api.app import lambda_handler, refuse_unknown_query
from smartcourse.api.deps import ContainerDep, CurrentUser
from smartcourse.api.paging import MAX_PAGE_SIZE
from smartcourse.errors import Invalid, field_problem
from smartcourse.models import iso
from smartcourse.schemas import INSTANT_NOTE, NotificationPublic
from smartcourse.services import notifications

router = APIRouter(tags=["notifications"], dependencies=[Depends(refuse_unknown_query)])

NEXT_LINK = {
    "Link": {
        "description": "the next (older) notifications while there are any (RFC 8288), as a reference relative to "
        "this request's URL that carries `before`: `<?limit=20&before=2026-12-04T22%3A41%3A39.123456Z>; "
        'rel="next"`',
        "schema": {"type": "string"},
    },
    "X-Unread-Count": {
        "description": "how many of the caller's notifications are unread, all pages (a badge; explore60 F12)",
        "schema": {"type": "integer"},
    },
}


@router.get("/notifications", response_model=list[NotificationPublic], responses={200: {"headers": NEXT_LINK}})
async def list_notifications(
    request: Request,
    response: Response,
    user: CurrentUser,
    c: ContainerDep,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)] = 20,
    before: Annotated[
        datetime | None, Query(description="page back: only notifications created before this" + INSTANT_NOTE)
    ] = None,
    page_size: Annotated[
        int | None,
        Query(ge=1, le=MAX_PAGE_SIZE, description="the other lists' name for `limit`; taken when both are given"),
    ] = None,
    unread: Annotated[bool, Query(description="only the unread ones")] = False,
    page: Annotated[
        int | None,
        Query(ge=1, description="the other lists' page number: only 1 (the newest); older ones by `before`"),
    ] = None,
) -> list[NotificationPublic]:
    if page is not None and page > 1:
        # Said how to page, not "less than or equal to 1" (explore81 F9).
        message = "the notifications are paged by time: follow the Link header (rel=next), or send before=<created_at>"
        raise Invalid(message, code="validation_error", details=field_problem("page", message, "less_than_equal"))
    # `page=1`, as a generic list client sends it, is the first page; `page=2` is refused with the way on (it answered
    # the newest again; refused as unknown, it broke such clients: explore79 F3).
    size = limit if page_size is None else page_size
    async with c.uow() as uow:
        # One more than asked: whether there is a next page.
        found = await notifications.list_notifications(
            uow=uow, principal=user, limit=size + 1, before=before, unread=unread
        )
        response.headers["X-Unread-Count"] = str(await notifications.unread_count(uow=uow, principal=user))
    if len(found) > size:
        found = found[:size]
        ref = request.url.include_query_params(before=iso(found[-1].created_at)).query
        response.headers["Link"] = f'<?{ref}>; rel="next"'
    return found


handler = lambda_handler(router)
