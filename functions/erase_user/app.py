"""POST /users/{user_id}/erase: erase an account's personal data (the account itself, with its password, or an
admin)."""

import uuid

from fastapi import APIRouter

from smartcourse.api.app import lambda_handler
from smartcourse.api.deps import ContainerDep, CurrentUser
from smartcourse.ratelimit import backoff
from smartcourse.schemas import AccountErased, EraseIn
from smartcourse.services import erasure

router = APIRouter(tags=["users"])


@router.post("/users/{user_id:uuid}/erase", response_model=AccountErased)
async def erase_user(user_id: uuid.UUID, body: EraseIn, user: CurrentUser, c: ContainerDep) -> AccountErased:
    """Its address and name replaced by placeholders (the address free to register again), its sessions ended, its
    live enrollments dropped, its certificates withdrawn from the public check, its assistant conversations and
    notifications deleted. Its enrollments, progress and quiz attempts stay for the platform's figures, naming
    nobody. One's own account needs `current_password`; an admin erases any account but the last active admin's;
    an instructor with published courses is refused (409 `owns_courses`). Repeated: the same answer, nothing done."""
    return await erasure.erase(container=c, principal=user, user_id=user_id, data=body, backoff=backoff(c))


handler = lambda_handler(router)
