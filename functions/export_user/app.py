"""GET /users/{user_id}/export: everything the platform holds about an account, in one JSON document (the account
itself or an admin)."""

import uuid
from datetime import datetime
from typing import Any

from fastapi import APIRouter
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse

from smartcourse.api.app import lambda_handler
from smartcourse.api.deps import ContainerDep, CurrentUser
from smartcourse.models import iso
from smartcourse.services import data_export

router = APIRouter(tags=["users"])


@router.get(
    "/users/{user_id:uuid}/export",
    response_model=dict[str, Any],
    responses={200: {"description": "the account's data; `Content-Disposition` names a file to save it as"}},
)
async def export_user(user_id: uuid.UUID, user: CurrentUser, c: ContainerDep) -> JSONResponse:
    """The account, its enrollments (with their history, lessons done and quiz attempts), certificates,
    notifications, assistant conversations and usage records, sessions and the courses it teaches (GDPR art. 15
    and 20). Secrets (the password's hash, tokens) are left out."""
    async with c.uow() as uow:
        data = await data_export.export(uow=uow, principal=user, user_id=user_id)
    return JSONResponse(
        # Times as every answer writes them, `Z` (explore78 F6: `+00:00` here only).
        jsonable_encoder(data, custom_encoder={datetime: iso}),
        headers={
            "Content-Disposition": f'attachment; filename="smartcourse-account-{user_id}.json"',
            "Cache-Control": "no-store",
        },
    )


handler = lambda_handler(router)
