"""GET /courses/{course_id}/materials/{material_id}: download a material (or a redirect to a presigned URL)."""

import uuid

from fastapi import APIRouter, Response
from fastapi.responses import RedirectResponse

from smartcourse.api.app import lambda_handler
from smartcourse.api.deps import ContainerDep, CurrentUser
from smartcourse.services import materials

router = APIRouter(tags=["materials"])
_OCTETS = "application/octet-stream"
_FILE = {"schema": {"type": "string", "format": "binary"}}
_URL = {"schema": {"type": "string"}, "description": "the file, valid for 15 minutes"}


@router.get(
    "/courses/{course_id:uuid}/materials/{material_id:uuid}",
    response_class=Response,
    responses={
        200: {
            "description": "the file as uploaded, as an attachment; HTML (and any type a browser would run) as "
            "application/octet-stream",
            "content": {media: _FILE for media in ("application/pdf", "text/markdown", "text/plain", _OCTETS)},
        },
        307: {"description": "a presigned URL of the file (S3)", "headers": {"Location": _URL}},
    },
)
async def get_material(course_id: uuid.UUID, material_id: uuid.UUID, user: CurrentUser, c: ContainerDep) -> Response:
    async with c.uow() as uow:
        doc = await materials.get_material(
            uow=uow, documents=c.documents, principal=user, course_id=course_id, material_id=material_id
        )
    media_type, headers = materials.download_headers(doc)
    url = await c.files.presigned_url(doc["storage_key"], doc["filename"], content_type=media_type)
    if url:
        return RedirectResponse(url, status_code=307)
    data = await c.files.get(doc["storage_key"])
    return Response(data, media_type=media_type, headers=headers)


handler = lambda_handler(router)
