"""POST /users: an admin makes an account (with a password, or inviting its owner to choose one)."""

from fastapi import APIRouter, Response

from smartcourse.api.app import lambda_handler
from smartcourse.api.created import LOCATION, created_at
from smartcourse.api.deps import ContainerDep, CurrentUser
from smartcourse.schemas import UserCreated, UserCreateIn
from smartcourse.services import accounts
from smartcourse.tasks import enqueue_invitation

router = APIRouter(tags=["users"])


@router.post("/users", status_code=201, response_model=UserCreated, responses={201: {"headers": LOCATION}})
async def create_user(body: UserCreateIn, user: CurrentUser, c: ContainerDep, response: Response) -> UserCreated:
    """A student's or an instructor's account, made by an admin (an HR system's nightly sync): not under the public
    sign-up's per-address limit. Without `password`, its owner is e-mailed an invitation to choose one (valid
    `INVITATION_DAYS`, once). An address already taken: 409 `email_taken` with the account's `user_id`."""
    async with c.uow() as uow:
        made = await accounts.create_for(uow=uow, principal=user, data=body, invite=enqueue_invitation)
    created_at(response, f"/users/{made.id}")
    return made


handler = lambda_handler(router)
