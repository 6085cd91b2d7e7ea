"""DELETE /courses/{course_id}/materials/{material_id}: remove a material, its file, its passages from the index."""

import uuid

from fastapi import APIRouter, Response

from smartcourse.api.app import lambda_handler
from smartcourse.api.deps import ContainerDep, CurrentUser
from smartcourse.services import materials

router = APIRouter(tags=["materials"])


@router.delete("/courses/{course_id:uuid}/materials/{material_id:uuid}", status_code=204, response_class=Response)
async def delete_material(course_id: uuid.UUID, material_id: uuid.UUID, user: CurrentUser, c: ContainerDep) -> Response:
    async with c.uow() as uow:
        indexed = await materials.delete_material(
            uow=uow,
            documents=c.documents,
            files=c.files,
            vector_index=c.vector_index,  # opened only for a course with a live index
            principal=user,
            course_id=course_id,
            material_id=material_id,
        )
    if indexed:  # its text no longer matches in the catalogue: cached search pages are stale
        await c.invalidate_course_cache(course_id)
    return Response(status_code=204)


handler = lambda_handler(router)
