"""GET /health: the status of every engine this process uses, of the background processes, and the outbox backlog."""

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from smartcourse.api.app import lambda_handler
from smartcourse.api.deps import ContainerDep, OpsAccess
from smartcourse.services import health

router = APIRouter(tags=["ops"])


#: The report, whatever the status: `status` for everyone, the rest for operators (docs/operations.md, Health).
_REPORT = health.report_schema("ok", "degraded")


@router.get(
    "/health",
    responses={
        200: {"description": "every engine and background process is well", "content": _REPORT},
        503: {
            "description": "degraded: the same report, saying what is not well",
            "content": _REPORT,
            "headers": health.RETRY_AFTER,
        },
    },
)
async def get_health(c: ContainerDep, detailed: OpsAccess) -> JSONResponse:
    report = await health.check(c)
    code = 200 if report["status"] == "ok" else 503
    # Production: engine names, addresses and errors only for admins / METRICS_TOKEN holders.
    headers = {} if code == 200 else {"Retry-After": "5"}
    return JSONResponse(report if detailed else {"status": report["status"]}, status_code=code, headers=headers)


handler = lambda_handler(router)
