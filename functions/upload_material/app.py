"""POST /courses/{course_id}/materials: upload a PDF, Markdown, text or HTML file (multipart `file`)."""

import uuid
from typing import Annotated

from fastapi import APIRouter, File, Form, Request, Response, UploadFile
from pydantic import BeforeValidator

from smartcourse.api.app import lambda_handler
from smartcourse.api.created import LOCATION, created_at
from smartcourse.api.deps import ContainerDep, CurrentUser
from smartcourse.domain.materials import file_part
from smartcourse.errors import Invalid
from smartcourse.schemas import MaterialPublic
from smartcourse.services import materials

router = APIRouter(tags=["materials"])


@router.post(
    "/courses/{course_id:uuid}/materials",
    status_code=201,
    response_model=MaterialPublic,
    responses={201: {"headers": LOCATION}},
)
async def upload_material(
    course_id: uuid.UUID,
    # A part without a filename is a text field, not a file: 422 invalid_filename (`file_part`).
    file: Annotated[UploadFile, BeforeValidator(file_part), File(description="PDF, Markdown, plain text or HTML")],
    user: CurrentUser,
    c: ContainerDep,
    request: Request,
    response: Response,
    lesson_id: Annotated[uuid.UUID | None, Form()] = None,
) -> MaterialPublic:
    # FastAPI binds the last of several `file` parts and drops the others without a word: one file per request.
    if (sent := len((await request.form()).getlist("file"))) > 1:
        raise Invalid(f"send one file per request, not {sent}", code="too_many_files", details={"files": sent})
    limit = c.settings.max_upload_bytes
    data = await file.read(limit + 1)  # one byte more tells "too large" without reading it all
    async with c.uow() as uow:
        material = await materials.upload_material(
            uow=uow,
            documents=c.documents,
            files=c.files,
            principal=user,
            course_id=course_id,
            filename=file.filename,
            data=data,
            lesson_id=lesson_id,
            max_bytes=limit,
        )
    created_at(response, f"/courses/{course_id}/materials/{material.id}")
    return material


handler = lambda_handler(router)
