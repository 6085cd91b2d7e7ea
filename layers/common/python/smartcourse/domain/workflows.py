"""The contract between services and workflows: workflow type names and step names (no Temporal import)."""

from __future__ import annotations

#: Registered workflow type names (`@workflow.defn(name=...)`): services start workflows by these.
PUBLISHING = "CoursePublishingWorkflow"
ENROLLMENT = "EnrollmentWorkflow"
CERTIFICATE = "CertificateWorkflow"

#: EnrollmentWorkflow's steps, in order, with the activity each runs.
ENROLLMENT_STEPS: tuple[tuple[str, str], ...] = (
    ("initialize_progress", "enroll.initialize_progress"),
    ("record_analytics", "enroll.record_analytics"),
    ("activate", "enroll.activate"),
    ("welcome_notification", "enroll.welcome_notification"),
)

#: CertificateWorkflow's steps, in order.
CERTIFICATE_STEPS: tuple[str, ...] = ("issue", "render_pdf", "notify")


def enrollment_input(enrollment_id: object) -> dict[str, str]:
    """EnrollmentWorkflow's argument as plain data (the workflow decodes it into its EnrollmentInput)."""
    return {"enrollment_id": str(enrollment_id)}


def certificate_input(enrollment_id: object) -> dict[str, str]:
    """CertificateWorkflow's argument as plain data (decoded into CertificateInput)."""
    return {"enrollment_id": str(enrollment_id)}
