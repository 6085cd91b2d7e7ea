"""The e-mail tasks wait out a mail relay's outage (explore55 F1: 8 retries gave up after 4.5 minutes)."""

from __future__ import annotations


def test_the_email_tasks_retries_span_about_an_hour_the_others_less() -> None:
    from smartcourse.tasks import (
        DeadLetteringTask,
        send_email_task,
        send_emails_task,
        send_invitation_task,
        send_password_reset_task,
    )

    def least_mean_span(task: object) -> float:
        """The mean time the task's retries span: each draws uniformly below min(cap, 2**n) s (Celery's full jitter)."""
        cap = task.retry_backoff_max  # type: ignore[attr-defined]
        return sum(min(cap, 2**n) / 2 for n in range(task.max_retries))  # type: ignore[attr-defined]

    for task in (send_email_task, send_emails_task, send_password_reset_task, send_invitation_task):
        assert task.max_retries == 24 and least_mean_span(task) > 3600, task.name
    assert DeadLetteringTask.max_retries == 8 and least_mean_span(DeadLetteringTask) < 300
