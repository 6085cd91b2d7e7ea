"""The Temporal worker: every workflow and activity of SmartCourse on one task queue."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from temporalio.client import Client
from temporalio.worker import Worker
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

from smartcourse.bootstrap import Container
from workflows.certificates.activities import CertificateActivities
from workflows.certificates.workflow import CertificateWorkflow
from workflows.enrollment.activities import EnrollmentActivities
from workflows.enrollment.workflow import EnrollmentWorkflow
from workflows.failures import FailureRecorder
from workflows.metrics import MetricsInterceptor
from workflows.publishing.activities import PublishingActivities
from workflows.publishing.workflow import CoursePublishingWorkflow

#: How often a running step's progress reaches Temporal at most (the SDK's heartbeat throttle).
PROGRESS_EVERY = timedelta(seconds=1)

WORKFLOWS: list[type] = [CoursePublishingWorkflow, EnrollmentWorkflow, CertificateWorkflow]

#: Modules the sandboxed workflows (publishing, certificates) share with the worker instead of importing afresh in
#: each run's sandbox: `smartcourse` (the workflows read only `smartcourse.domain.workflows`' names: constants, no
#: I/O) and libraries the process's own hooks touch from the workflow thread (the tracing interceptor's context,
#: log records, metrics). Left to the sandbox, a module first imported during a run (lazily, elsewhere in the
#: process) was re-imported inside that run with a `UserWarning` each ("imported after initial workflow load").
#: The workflow modules themselves stay sandboxed: the sandbox still guards their code.
PASSED_THROUGH: tuple[str, ...] = ("smartcourse", "opentelemetry", "redis", "sqlalchemy", "prometheus_client")


def workflow_runner() -> SandboxedWorkflowRunner:
    return SandboxedWorkflowRunner(restrictions=SandboxRestrictions.default.with_passthrough_modules(*PASSED_THROUGH))


def activities_for(container: Container) -> list[Any]:
    return [
        *PublishingActivities(container).all(),
        *EnrollmentActivities(container).all(),
        *CertificateActivities(container).all(),
    ]


def build_worker(client: Client, container: Container, *, task_queue: str | None = None) -> Worker:
    return Worker(
        client,
        task_queue=task_queue or container.settings.temporal_task_queue,
        workflows=WORKFLOWS,
        workflow_runner=workflow_runner(),
        activities=activities_for(container),
        max_concurrent_activities=50,
        # EnrollmentWorkflow's set-up is a local activity holding one database connection: a burst of them waits
        # here for a slot (SMARTCOURSE_WORKER_MAX_LOCAL_ACTIVITIES, 32), then for a connection of the pool (each
        # set-up holds one for tens of milliseconds; the pool's 30 s timeout matters only on a stalled database).
        max_concurrent_local_activities=container.settings.worker_max_local_activities,
        # ... and as many workflow tasks: each enrollment task runs one local activity, and a task that waited in
        # the worker for a local-activity slot past its 10 s timeout was retried (seen with eager starts of 64).
        max_concurrent_workflow_tasks=container.settings.worker_max_workflow_tasks,
        # A step's progress (`embed: running, 1200/2000`) reaches the server, and `GET /workflows/{id}`, with its
        # heartbeat; the SDK sends one at most every 0.8 x the heartbeat timeout by default (16 s of a publish
        # step's 20), so a 15 s embed read 0/N throughout. One a second per running step is nothing to the server.
        max_heartbeat_throttle_interval=PROGRESS_EVERY,
        # Records every activity failure on the run's workflow_runs row (GET /ops/workflows); keep it last.
        interceptors=[MetricsInterceptor(), FailureRecorder(container.sessionmaker)],
    )
