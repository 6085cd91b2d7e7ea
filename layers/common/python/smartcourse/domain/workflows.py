"""The contract between services and workflows: workflow type names and step names (no Temporal import)."""

from __future__ import annotations

#: Registered workflow type names (`@workflow.defn(name=...)`): services start workflows by these.
PUBLISHING = "CoursePublishingWorkflow"
ENROLLMENT = "EnrollmentWorkflow"
CERTIFICATE = "CertificateWorkflow"

#: EnrollmentWorkflow's one (local) activity: its four steps commit in one transaction, then the e-mail is queued.
ENROLLMENT_SET_UP = "enroll.set_up"

#: EnrollmentWorkflow's steps, in order, with the activity that runs each (the same one for all four).
ENROLLMENT_STEPS: tuple[tuple[str, str], ...] = (
    ("initialize_progress", ENROLLMENT_SET_UP),
    ("record_analytics", ENROLLMENT_SET_UP),
    ("activate", ENROLLMENT_SET_UP),
    ("welcome_notification", ENROLLMENT_SET_UP),
)

#: The activity of each step in EnrollmentWorkflow runs started before the one-transaction set-up (replay only).
ENROLLMENT_LEGACY_ACTIVITIES: tuple[str, ...] = (
    "enroll.initialize_progress",
    "enroll.record_analytics",
    "enroll.activate",
    "enroll.welcome_notification",
)

#: CertificateWorkflow's steps, in order.
CERTIFICATE_STEPS: tuple[str, ...] = ("issue", "render_pdf", "notify")


def enrollment_input(enrollment_id: object) -> dict[str, str | bool]:
    """EnrollmentWorkflow's argument as plain data (the workflow decodes it into its EnrollmentInput).

    `one_transaction`: the run takes the one-transaction set-up without asking `workflow.patched`, so its history
    has no patch marker and no search-attribute upsert (6 events, not 8; no CPU difference measurable on the dev
    server, docs/benchmarks.md). Runs started without it (by earlier code, which never set it) still ask, and
    replay as they ran."""
    return {"enrollment_id": str(enrollment_id), "one_transaction": True}


def certificate_input(enrollment_id: object) -> dict[str, str]:
    """CertificateWorkflow's argument as plain data (decoded into CertificateInput)."""
    return {"enrollment_id": str(enrollment_id)}
