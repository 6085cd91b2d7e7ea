"""Temporal behind the WorkflowStarter port: start by *name* (deterministic id, REJECT_DUPLICATE), describe."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any, TypeVar

from temporalio.client import Client
from temporalio.common import WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from smartcourse.errors import Unavailable

RPC_TIMEOUT = timedelta(seconds=5)
T = TypeVar("T")

#: Status names: Temporal's WorkflowExecutionStatus lower-cased, plus "not_started" for an id Temporal does not know.
RUNNING = "running"
NOT_STARTED = "not_started"


class TemporalWorkflowStarter:
    """Implements `ports.WorkflowStarter`. `connect` returns the (lazily connected, shared) Temporal client.

    Arguments are plain data (dicts, dataclasses, pydantic models): the pydantic data converter writes them
    as JSON, which the workflow decodes into its own input type, so callers never import workflow classes.
    """

    def __init__(self, connect: Callable[[], Awaitable[Client]], *, task_queue: str) -> None:
        self._connect = connect
        self.task_queue = task_queue

    async def start(self, workflow: str, arg: Any, *, workflow_id: str) -> str:
        """Start `workflow` as `workflow_id` unless that id already ran or runs (REJECT_DUPLICATE).

        Returns "running" when this call started it, else the existing run's status ("completed", ...)."""
        status, _ = await self.start_if_absent(workflow, arg, workflow_id=workflow_id)
        return status

    async def _bounded(self, call: Callable[[], Awaitable[T]], what: str) -> T:
        """`call` (a connect and one request) within RPC_TIMEOUT in all. `rpc_timeout` bounds each attempt only: the
        client retries a refused connection inside the call, so a publish while Temporal's port refused took ~10 s
        to answer its 503 and a second click ~15 s (explore21 F5)."""
        try:
            async with asyncio.timeout(RPC_TIMEOUT.total_seconds()):
                return await call()
        except TimeoutError as exc:
            raise Unavailable(
                f"the workflow engine did not answer within {RPC_TIMEOUT.total_seconds():.0f} s ({what})",
                code="workflow_engine_unavailable",
            ) from exc

    async def start_if_absent(self, workflow: str, arg: Any, *, workflow_id: str) -> tuple[str, bool]:
        """As `start`, and whether this call is the one that started it (the sweeper counts those)."""
        try:
            await self._bounded(lambda: self._start(workflow, arg, workflow_id), f"start {workflow_id}")
        except WorkflowAlreadyStartedError:
            return await self.status(workflow_id), False
        return RUNNING, True

    async def _start(self, workflow: str, arg: Any, workflow_id: str) -> None:
        client = await self._connect()
        try:
            await client.start_workflow(
                workflow,
                arg,
                id=workflow_id,
                task_queue=self.task_queue,
                id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
                rpc_timeout=RPC_TIMEOUT,
            )
        except RPCError as exc:
            # The engine down or slow (`tcp connect error`, deadline exceeded): what the callers handle (a publish
            # reverts and answers 503; the dispatcher retries later). It escaped as an RPCError, so a publish
            # answered 500 and left the course in `publishing` with its run said `running` (explore18 F3).
            raise Unavailable(
                f"the workflow engine did not start {workflow_id}: {exc.message or exc.status}",
                code="workflow_engine_unavailable",
            ) from exc

    async def status(self, workflow_id: str) -> str:
        """The run's status name, or "not_started" if Temporal does not know the id."""
        return await self._bounded(lambda: self._status(workflow_id), f"describe {workflow_id}")

    async def _status(self, workflow_id: str) -> str:
        client = await self._connect()
        try:
            desc = await client.get_workflow_handle(workflow_id).describe(rpc_timeout=RPC_TIMEOUT)
        except RPCError as exc:
            if exc.status == RPCStatusCode.NOT_FOUND:
                return NOT_STARTED
            raise Unavailable("the workflow engine did not answer", code="workflow_engine_unavailable") from exc
        return str(desc.status.name).lower() if desc.status else "unknown"

    async def cancel(self, workflow_id: str) -> bool:
        """Request the run's cancellation; False if Temporal does not know it or it has already closed."""
        return await self._bounded(lambda: self._cancel(workflow_id), f"cancel {workflow_id}")

    async def _cancel(self, workflow_id: str) -> bool:
        client = await self._connect()
        try:
            await client.get_workflow_handle(workflow_id).cancel(rpc_timeout=RPC_TIMEOUT)
        except RPCError as exc:
            if exc.status == RPCStatusCode.NOT_FOUND:  # unknown, or closed already ("workflow execution already
                return False  # completed" is NOT_FOUND too)
            raise Unavailable("the workflow engine did not answer", code="workflow_engine_unavailable") from exc
        return True

    async def steps(self, workflow_id: str, *, completed: bool = False) -> list[dict[str, Any]]:
        """The workflow's `steps` query (raises if the worker does not answer in time). A completed run's steps
        come from its result when it holds them (every workflow of ours returns them): a query on a closed run is
        a replay of its whole history on a worker, the result is one read from the server."""
        return await self._bounded(lambda: self._steps(workflow_id, completed), f"steps of {workflow_id}")

    async def _steps(self, workflow_id: str, completed: bool) -> list[dict[str, Any]]:
        client = await self._connect()
        handle = client.get_workflow_handle(workflow_id)
        if completed:
            result = await handle.result(rpc_timeout=RPC_TIMEOUT)
            if isinstance(result, dict) and isinstance(result.get("steps"), list):
                return list(result["steps"])
        raw: list[dict[str, Any]] = await handle.query("steps", rpc_timeout=RPC_TIMEOUT)
        return raw
