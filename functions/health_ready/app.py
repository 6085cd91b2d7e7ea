"""GET /health/ready: whether this API process can serve requests (PostgreSQL, Redis): a load balancer's check."""

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from smartcourse.api.app import lambda_handler
from smartcourse.api.deps import ContainerDep, OpsAccess
from smartcourse.services import health

router = APIRouter(tags=["ops"])

_REPORT = health.report_schema("ok", "unavailable")


@router.get(
    "/health/ready",
    responses={
        200: {"description": "the engines requests need answer", "content": _REPORT},
        503: {
            "description": "one of them does not: take this process out of service",
            "content": _REPORT,
            "headers": health.RETRY_AFTER,
        },
    },
)
async def health_ready(c: ContainerDep, detailed: OpsAccess) -> JSONResponse:
    report = await health.ready(c)
    code = 200 if report["status"] == "ok" else 503
    headers = {} if code == 200 else {"Retry-After": "5"}
    return JSONResponse(report if detailed else {"status": report["status"]}, status_code=code, headers=headers)


handler = lambda_handler(router)
