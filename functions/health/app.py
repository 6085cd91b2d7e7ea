"""GET /health: liveness plus the status of every engine this process uses."""

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from smartcourse.api.app import lambda_handler
from smartcourse.api.deps import ContainerDep
from smartcourse.services import health

router = APIRouter(tags=["ops"])


@router.get("/health")
async def get_health(c: ContainerDep) -> JSONResponse:
    report = await health.check(c)
    return JSONResponse(report, status_code=200 if report["status"] == "ok" else 503)


handler = lambda_handler(router)
