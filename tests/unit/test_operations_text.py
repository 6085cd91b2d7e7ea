"""How a task's failure is kept: its cause whole, the traceback's end (services/operations.kept_error)."""

from smartcourse.services.operations import ERROR_CHARS, kept_error


def test_a_long_failure_keeps_its_cause_and_the_tracebacks_end() -> None:
    """explore77 F9: the last 4,000 characters were kept, so the row began mid-line and its cause was its last line."""
    cause = "EmailsFailed: 1 of 1 e-mails failed: SMTPServerDisconnected: Connection unexpectedly closed"
    trace = "Traceback (most recent call last):\n" + "".join(f'  File "/srv/x.py", line {i}\n' for i in range(400))
    kept = kept_error(f"{cause}\n{trace}celery.exceptions.Retry: Retry in 15s")
    assert len(kept) <= ERROR_CHARS and kept.startswith(cause + "\n…") and kept.endswith("Retry in 15s")
    assert kept_error("short: one line") == "short: one line"
