"""POST /courses/{course_id}/materials: upload a PDF, Markdown, text, HTML or SRT/WebVTT file (multipart `file`)."""

import hashlib
import uuid

from fastapi import APIRouter, Request, Response

from smartcourse.api.app import lambda_handler
from smartcourse.api.created import LOCATION, created_at
from smartcourse.api.deps import ContainerDep, CurrentUser
from smartcourse.api.idempotency import REPLAYED_HEADER, IdempotencyKey, claim
from smartcourse.api.uploads import MATERIAL_UPLOAD_BODY, upload_form
from smartcourse.schemas import MaterialPublic
from smartcourse.services import materials

router = APIRouter(tags=["materials"])


@router.post(
    "/courses/{course_id:uuid}/materials",
    status_code=201,
    response_model=MaterialPublic,
    responses={201: {"headers": {**LOCATION, **REPLAYED_HEADER}}},
    openapi_extra=MATERIAL_UPLOAD_BODY,
)
async def upload_material(
    course_id: uuid.UUID,
    user: CurrentUser,
    c: ContainerDep,
    request: Request,
    response: Response,
    idempotency_key: IdempotencyKey = None,
) -> MaterialPublic | Response:
    # Who may upload where is answered before the body is read (`smartcourse.api.uploads`): a refused upload of
    # 20 MiB costs a token check and a course read, not the read of 20 MiB.
    async with c.uow() as uow:
        await materials.may_upload(uow, user, course_id)
    limit = c.settings.max_upload_bytes
    async with upload_form(request) as form:
        data = await form.file.read(limit + 1)  # one byte more tells "too large" without reading it all
        # The key names the file and where it goes (its bytes, name and lesson), as a JSON body names a course.
        sent = [form.file.filename or "", str(form.lesson_id or ""), hashlib.sha256(data).hexdigest()]
        async with c.uow() as uow:
            keep = c.settings.idempotency_key_hours
            keyed = await claim(
                uow, user, idempotency_key, f"POST /courses/{course_id}/materials", sent, keep_hours=keep
            )
            if keyed.earlier is not None:
                return keyed.replay()
            material = await materials.upload_material(
                uow=uow,
                documents=c.documents,
                files=c.files,
                principal=user,
                course_id=course_id,
                filename=form.file.filename,
                data=data,
                lesson_id=form.lesson_id,
                max_bytes=limit,
                size=form.file.size,
            )
            created_at(response, f"/courses/{course_id}/materials/{material.id}")
            await keyed.answer(201, material, response)
    return material


handler = lambda_handler(router)
