"""The SmartCourse Grafana dashboards, written as provisioned JSON into ops/grafana/dashboards/.

Every panel is one line below (title, PromQL, unit); `python ops/grafana/dashboards.py` rewrites the JSON files
and `--check` fails when they are out of date (the test suite runs it). tests/integration/test_dashboards.py runs
every panel's query against the stack's Prometheus after a short scenario and requires data from each.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

OUT = Path(__file__).resolve().parent / "dashboards"
DATASOURCE = {"type": "prometheus", "uid": "prometheus"}

PUBLISHING = "CoursePublishingWorkflow"
ENROLLMENT = "EnrollmentWorkflow"


@dataclass(frozen=True)
class Panel:
    title: str
    exprs: tuple[str, ...]
    unit: str = "short"
    legend: tuple[str, ...] = ()
    kind: str = "timeseries"  # or "stat"
    description: str = ""


@dataclass(frozen=True)
class Dashboard:
    uid: str
    file: str
    title: str
    description: str
    panels: list[Panel] = field(default_factory=list)


def p95(metric: str, selector: str = "", by: str = "", window: str = "15m") -> str:
    group = f"le, {by}" if by else "le"
    return f"histogram_quantile(0.95, sum by ({group}) (rate({metric}_bucket{selector}[{window}])))"


DASHBOARDS = [
    Dashboard(
        uid="smartcourse-overview",
        file="platform-overview.json",
        title="SmartCourse: platform overview",
        description="Is every process up, is the API healthy, are workflows, events and tasks flowing?",
        panels=[
            Panel("Processes up", ('sum by (process) (up{job="smartcourse"})',), legend=("{{process}}",), kind="stat"),
            Panel(
                "API requests by status",
                ("sum by (status) (rate(smartcourse_http_requests_total[5m]))",),
                unit="reqps",
                legend=("{{status}}",),
            ),
            Panel(
                "API p95 latency by route",
                (p95("smartcourse_http_request_duration_seconds", by="route", window="5m"),),
                unit="s",
                legend=("{{route}}",),
            ),
            Panel(
                "Error answers by code",
                ("sum by (code) (increase(smartcourse_domain_errors_total[1h]))",),
                legend=("{{code}}",),
                description="Every error answer of the API by its code (refusals and 5xx), per hour.",
            ),
            Panel(
                "Workflow runs by outcome (1h)",
                ("sum by (workflow, outcome) (increase(smartcourse_workflow_runs_total[1h]))",),
                legend=("{{workflow}} {{outcome}}",),
            ),
            Panel(
                "Outbox backlog and dead letters",
                ("max(smartcourse_outbox_backlog)", "max(smartcourse_dead_letters_pending_all)"),
                legend=("outbox events not published", "dead letters pending"),
            ),
            Panel(
                "Celery tasks by outcome (1h)",
                ("sum by (outcome) (increase(smartcourse_celery_tasks_total[1h]))",),
                legend=("{{outcome}}",),
            ),
        ],
    ),
    Dashboard(
        uid="smartcourse-enrollment",
        file="enrollment-pipeline.json",
        title="SmartCourse: enrollment pipeline",
        description="From POST /enrollments to an active enrollment: decisions, backlog, workflow and its steps.",
        panels=[
            Panel(
                "Enrollment decisions per minute",
                ("sum by (outcome) (rate(smartcourse_enrollment_requests_total[5m])) * 60",),
                legend=("{{outcome}}",),
            ),
            Panel(
                "Refusals by reason (1h)",
                ('sum by (reason) (increase(smartcourse_enrollment_requests_total{outcome="refused"}[1h]))',),
                legend=("{{reason}}",),
            ),
            Panel(
                "Admitted, not yet active",
                ("max(smartcourse_enrollment_backlog)", "max(smartcourse_enrollment_backlog_oldest_age_seconds)"),
                legend=("enrollments waiting", "oldest waits (s)"),
            ),
            Panel(
                "POST /enrollments p95",
                (p95("smartcourse_http_request_duration_seconds", '{route="/enrollments"}', window="5m"),),
                unit="s",
            ),
            Panel(
                "Enrollment workflow runs by outcome (1h)",
                (f'sum by (outcome) (increase(smartcourse_workflow_runs_total{{workflow="{ENROLLMENT}"}}[1h]))',),
                legend=("{{outcome}}",),
            ),
            Panel(
                "Admission to active: workflow p95",
                (p95("smartcourse_workflow_duration_seconds", f'{{workflow="{ENROLLMENT}"}}', window="1h"),),
                unit="s",
            ),
            Panel(
                "Enrollment steps by outcome (1h)",
                (
                    "sum by (activity, outcome) "
                    '(increase(smartcourse_activity_runs_total{activity=~"enroll\\\\..*"}[1h]))',
                ),
                legend=("{{activity}} {{outcome}}",),
            ),
        ],
    ),
    Dashboard(
        uid="smartcourse-publishing",
        file="publishing.json",
        title="SmartCourse: publishing",
        description="Course publishing workflows: outcomes, durations, and which step is slow or failing.",
        panels=[
            Panel(
                "Publish runs by outcome (1h)",
                (f'sum by (outcome) (increase(smartcourse_workflow_runs_total{{workflow="{PUBLISHING}"}}[1h]))',),
                legend=("{{outcome}}",),
            ),
            Panel(
                "Publish duration p95",
                (p95("smartcourse_workflow_duration_seconds", f'{{workflow="{PUBLISHING}"}}', "outcome", "1h"),),
                unit="s",
                legend=("{{outcome}}",),
            ),
            Panel(
                "Step duration p95",
                (p95("smartcourse_activity_duration_seconds", '{activity=~"publish\\\\..*"}', "activity", "1h"),),
                unit="s",
                legend=("{{activity}}",),
            ),
            Panel(
                "Failed step attempts (1h)",
                (
                    'sum by (activity) (increase(smartcourse_activity_runs_total{activity=~"publish\\\\..*", '
                    'outcome="failed"}[1h]))',
                ),
                legend=("{{activity}}",),
            ),
            Panel(
                "Publish runs recorded, by status",
                ('max by (status) (smartcourse_workflow_runs_recorded{kind="course_publishing"})',),
                legend=("{{status}}",),
                kind="stat",
                description="All-time counts from the workflow_runs table (read by the worker).",
            ),
        ],
    ),
    Dashboard(
        uid="smartcourse-assistant",
        file="assistant.json",
        title="SmartCourse: assistant",
        description="Assistant interactions: outcomes, latency and model tokens by kind.",
        panels=[
            Panel(
                "Interactions by kind and outcome (1h)",
                ("sum by (kind, outcome) (increase(smartcourse_assistant_interactions_total[1h]))",),
                legend=("{{kind}} {{outcome}}",),
            ),
            Panel(
                "Latency p95 by kind",
                (p95("smartcourse_assistant_duration_seconds", by="kind", window="1h"),),
                unit="s",
                legend=("{{kind}}",),
            ),
            Panel(
                "Model tokens (1h)",
                ("sum by (kind, direction) (increase(smartcourse_assistant_tokens_total[1h]))",),
                legend=("{{kind}} {{direction}}",),
            ),
            Panel(
                "Assistant requests by status",
                ('sum by (route, status) (rate(smartcourse_http_requests_total{route=~"/ai/.*"}[5m]))',),
                unit="reqps",
                legend=("{{route}} {{status}}",),
            ),
        ],
    ),
    Dashboard(
        uid="smartcourse-events-tasks",
        file="events-and-tasks.json",
        title="SmartCourse: events and tasks",
        description="Outbox relay, Kafka consumers, dead letters and Celery tasks.",
        panels=[
            Panel(
                "Outbox events published by type",
                ("sum by (event_type) (rate(smartcourse_outbox_relayed_total[5m]))",),
                unit="ops",
                legend=("{{event_type}}",),
            ),
            Panel(
                "Outbox publish p95",
                (p95("smartcourse_outbox_publish_duration_seconds", window="5m"),),
                unit="s",
            ),
            Panel(
                "Outbox backlog",
                ("max(smartcourse_outbox_backlog)", "max(smartcourse_outbox_oldest_age_seconds)"),
                legend=("events not published", "oldest (s)"),
            ),
            Panel(
                "Consumed records by consumer and outcome",
                ("sum by (consumer, outcome) (rate(smartcourse_events_consumed_total[5m]))",),
                unit="ops",
                legend=("{{consumer}} {{outcome}}",),
            ),
            Panel(
                "Consumer lag",
                ("max by (consumer) (smartcourse_kafka_consumer_lag)",),
                legend=("{{consumer}}",),
            ),
            Panel(
                "Dead letters",
                (
                    "sum by (consumer) (increase(smartcourse_dead_letters_total[1h]))",
                    "max by (consumer) (smartcourse_dead_letters_pending)",
                ),
                legend=("new in 1h: {{consumer}}", "pending: {{consumer}}"),
            ),
            Panel(
                "Celery tasks by outcome (1h)",
                ("sum by (task, outcome) (increase(smartcourse_celery_tasks_total[1h]))",),
                legend=("{{task}} {{outcome}}",),
            ),
            Panel(
                "E-mails waiting",
                (
                    "max(smartcourse_email_backlog)",
                    "max(smartcourse_email_retrying)",
                    "max(smartcourse_email_backlog_oldest_age_seconds)",
                ),
                legend=("not sent yet", "failed at least once", "oldest (s)"),
                description="Notifications whose e-mail has not gone out: queued, or retried while SMTP fails.",
            ),
            Panel(
                "Celery task p95",
                (p95("smartcourse_celery_task_duration_seconds", by="task", window="1h"),),
                unit="s",
                legend=("{{task}}",),
            ),
        ],
    ),
]


def panel_json(panel: Panel, panel_id: int) -> dict[str, object]:
    width = 12
    x = 0 if panel_id % 2 == 1 else 12
    y = (panel_id - 1) // 2 * 8
    targets = [
        {
            "refId": chr(ord("A") + i),
            "datasource": DATASOURCE,
            "expr": expr,
            "legendFormat": panel.legend[i] if i < len(panel.legend) else "__auto",
            "range": True,
        }
        for i, expr in enumerate(panel.exprs)
    ]
    out: dict[str, object] = {
        "id": panel_id,
        "type": panel.kind,
        "title": panel.title,
        "description": panel.description,
        "datasource": DATASOURCE,
        "gridPos": {"h": 8, "w": width, "x": x, "y": y},
        "targets": targets,
        "fieldConfig": {"defaults": {"unit": panel.unit}, "overrides": []},
    }
    if panel.kind == "timeseries":
        out["options"] = {"legend": {"displayMode": "list", "placement": "bottom"}, "tooltip": {"mode": "multi"}}
    else:
        out["options"] = {"reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False}}
    return out


def dashboard_json(dashboard: Dashboard) -> dict[str, object]:
    return {
        "uid": dashboard.uid,
        "title": dashboard.title,
        "description": dashboard.description,
        "tags": ["smartcourse"],
        "timezone": "browser",
        "schemaVersion": 39,
        "version": 1,
        "editable": False,
        "refresh": "10s",
        "time": {"from": "now-1h", "to": "now"},
        "links": [
            {"title": "SmartCourse", "type": "dashboards", "tags": ["smartcourse"], "asDropdown": True},
        ],
        "templating": {"list": []},
        "annotations": {"list": []},
        "panels": [panel_json(panel, i) for i, panel in enumerate(dashboard.panels, start=1)],
    }


def render() -> dict[str, str]:
    """File name → JSON text of every dashboard."""
    return {d.file: json.dumps(dashboard_json(d), indent=2) + "\n" for d in DASHBOARDS}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true", help="fail if the JSON files are out of date")
    args = parser.parse_args(argv)
    stale = []
    for name, text in render().items():
        path = OUT / name
        if args.check:
            if not path.exists() or path.read_text() != text:
                stale.append(name)
            continue
        OUT.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        print(f"wrote {path}")
    if stale:
        print(f"out of date: {', '.join(stale)}; run `python ops/grafana/dashboards.py`", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
