"""Metrics: each process kind serves /metrics, Celery's prefork children are added up, the stored-state gauges render,
the workflow interceptor classifies outcomes; Prometheus config, alert rules and the dashboards are valid."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
import urllib.request
from pathlib import Path

import pytest

from smartcourse import metrics
from smartcourse.metrics_multiprocess import is_celery_worker_command

REPO = Path(__file__).resolve().parents[2]
PY = REPO / "layers" / "common" / "python"


def _scrape(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        assert response.status == 200
        return response.read().decode()


def _run(code: str, env: dict[str, str] | None = None) -> str:
    """Run `code` in a fresh interpreter (a process of its own, like each SmartCourse process)."""
    full_env = {**os.environ, "PYTHONPATH": f"{PY}{os.pathsep}{REPO}", **(env or {})}
    for var in ("PROMETHEUS_MULTIPROC_DIR", "SMARTCOURSE_METRICS_PORT"):
        if env is None or var not in env:
            full_env.pop(var, None)
    out = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], env=full_env, capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr[-3000:]
    return out.stdout


# --- serving --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["worker", "relay", "consumers", "celery"])
def test_each_process_kind_serves_its_figures(kind: str) -> None:
    """A process of each kind: serve_metrics(kind) answers /metrics with its kind and the figures it counts."""
    figures = {
        "worker": "from workflows.metrics import record_workflow\n"
        "record_workflow('CoursePublishingWorkflow', 'failed', 2.5)",
        "relay": "metrics.OUTBOX_RELAYED.labels('course.published').inc()",
        "consumers": "metrics.EVENTS_CONSUMED.labels('analytics', 'applied').inc()",
        "celery": "metrics.CELERY_TASKS.labels('notifications.send_email', 'succeeded').inc()",
    }[kind]
    code = "\n".join(
        [
            "import urllib.request",
            "from smartcourse import metrics",
            figures,
            f"port = metrics.serve_metrics({kind!r}, port=0)",
            f"assert metrics.serve_metrics({kind!r}) == port",  # once per process
            "print(urllib.request.urlopen(f'http://127.0.0.1:{port}/metrics', timeout=5).read().decode())",
        ]
    )
    text = _run(code)
    assert f'smartcourse_build_info{{kind="{kind}",version=' in text
    expected = {
        "worker": 'smartcourse_workflow_runs_total{outcome="failed",workflow="CoursePublishingWorkflow"} 1.0',
        "relay": 'smartcourse_outbox_relayed_total{event_type="course.published"} 1.0',
        "consumers": 'smartcourse_events_consumed_total{consumer="analytics",outcome="applied"} 1.0',
        "celery": 'smartcourse_celery_tasks_total{outcome="succeeded",task="notifications.send_email"} 1.0',
    }[kind]
    assert expected in text


def test_ports_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in [v for v in os.environ if v.startswith("SMARTCOURSE_METRICS_PORT")]:
        monkeypatch.delenv(var)
    assert metrics.metrics_port("worker") == 9101 and metrics.metrics_port("celery") == 9104
    assert metrics.metrics_port("api") is None  # the API serves /metrics on its own port
    monkeypatch.setenv("SMARTCOURSE_METRICS_PORT", "9300")
    assert metrics.metrics_port("relay") == 9300
    monkeypatch.setenv("SMARTCOURSE_METRICS_PORT_RELAY", "9301")
    assert metrics.metrics_port("relay") == 9301  # the kind's own variable wins
    monkeypatch.setenv("SMARTCOURSE_METRICS_PORT_RELAY", "off")
    assert metrics.metrics_port("relay") is None
    with pytest.raises(ValueError, match="unknown process kind"):
        metrics.serve_metrics("nonsense")


def test_a_busy_port_is_logged_not_fatal() -> None:
    out = _run(
        """
        import socket
        from smartcourse import metrics
        s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen()
        print(metrics.serve_metrics("relay", port=s.getsockname()[1]))
        """
    )
    assert out.strip() == "None"


def test_celery_prefork_children_are_added_up(tmp_path: Path) -> None:
    """Multiprocess mode: counts made in forked children show on the parent's /metrics, summed."""
    out = _run(
        """
        import multiprocessing, urllib.request
        from smartcourse import metrics

        def work(n):
            for _ in range(n):
                metrics.CELERY_TASKS.labels("notifications.send_email", "retried").inc()

        ctx = multiprocessing.get_context("fork")
        children = [ctx.Process(target=work, args=(n,)) for n in (2, 3)]
        for c in children: c.start()
        for c in children: c.join()
        port = metrics.serve_metrics("celery", port=0)
        print(urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode())
        print("pid", os.getpid())
        """.replace("import multiprocessing,", "import os, multiprocessing,"),
        env={"PROMETHEUS_MULTIPROC_DIR": str(tmp_path)},
    )
    assert 'smartcourse_celery_tasks_total{outcome="retried",task="notifications.send_email"} 5.0' in out
    # build_info is per process ("liveall"): the multiprocess collector adds a `pid` label, which the docs name.
    pid = out.split("pid ")[-1].strip()
    assert re.search(rf'smartcourse_build_info{{kind="celery",pid="{pid}",version="[^"]+"}} 1.0', out), out
    row = next(line for line in (REPO / "docs" / "operations.md").read_text().splitlines() if "`build_info`" in line)
    assert "pid" in row


def test_a_celery_worker_command_selects_multiprocess_mode() -> None:
    assert is_celery_worker_command(["/venv/bin/celery", "-A", "smartcourse.tasks", "worker", "-l", "info"])
    assert is_celery_worker_command(["/venv/lib/python3.11/site-packages/celery/__main__.py", "-A", "x", "worker"])
    assert not is_celery_worker_command(["/venv/bin/celery", "-A", "smartcourse.tasks", "beat"])
    assert not is_celery_worker_command(["/venv/bin/smartcourse", "worker"])
    out = _run(
        """
        import os, sys
        sys.argv = ["/venv/bin/celery", "-A", "smartcourse.tasks", "worker"]
        import smartcourse.tasks
        import prometheus_client.values as values
        print(os.environ["PROMETHEUS_MULTIPROC_DIR"], values.ValueClass.__name__)
        """
    )
    directory, value_class = out.split()
    assert "smartcourse-celery-metrics-" in directory and value_class == "MmapedValue"


# --- the stored state, the workflow outcomes ------------------------------------------------------------


def test_database_state_renders_every_gauge() -> None:
    state = metrics.DatabaseState()
    assert list(state.collect()) == []  # nothing read yet: no made-up zeros
    state.snapshot = metrics._Snapshot(
        at=1.0,
        outbox_backlog=3,
        outbox_oldest_age=42.0,
        outbox_retrying=1,
        dead_letters={"analytics": 2, "celery:notifications.send_email": 1},
        workflow_runs={("course_publishing", "failed"): 1, ("course_publishing", "completed"): 4},
        enrollment_backlog=5,
        enrollment_oldest_age=7.5,
        email_backlog=4,
        email_oldest_age=300.0,
        email_retrying=2,
    )
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value for family in state.collect() for s in family.samples}
    assert samples[("smartcourse_outbox_backlog", ())] == 3
    assert samples[("smartcourse_outbox_oldest_age_seconds", ())] == 42.0
    assert samples[("smartcourse_dead_letters_pending", (("consumer", "analytics"),))] == 2
    assert samples[("smartcourse_dead_letters_pending_all", ())] == 3
    assert samples[("smartcourse_workflow_runs_recorded", (("kind", "course_publishing"), ("status", "failed")))] == 1
    assert samples[("smartcourse_enrollment_backlog_oldest_age_seconds", ())] == 7.5
    assert samples[("smartcourse_email_backlog", ())] == 4 and samples[("smartcourse_email_retrying", ())] == 2
    assert samples[("smartcourse_email_backlog_oldest_age_seconds", ())] == 300.0


def test_workflow_outcomes_are_classified() -> None:
    import asyncio

    import temporalio.exceptions
    import temporalio.workflow

    from workflows.metrics import _outcome

    assert _outcome(temporalio.exceptions.ApplicationError("no lesson", non_retryable=True)) == "failed"
    assert _outcome(asyncio.CancelledError()) == "cancelled"

    class ContinuedAsNew(temporalio.workflow.ContinueAsNewError):  # what workflow.continue_as_new raises
        pass

    assert _outcome(ContinuedAsNew()) == "continued"
    assert _outcome(RuntimeError("a bug")) is None  # Temporal retries the workflow task: not a finished run


# --- configuration: Prometheus, alert rules, dashboards -------------------------------------------------


def _stack_module() -> object:
    spec = importlib.util.spec_from_file_location("stack_script", REPO / "scripts" / "stack.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _promtool() -> str:
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool is not installed: `scripts/stack up prometheus` installs it (Debian's prometheus)")
    return promtool


def test_promtool_accepts_the_alert_rules() -> None:
    out = subprocess.run(
        [_promtool(), "check", "rules", str(REPO / "ops" / "prometheus" / "alerts.yml")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stdout + out.stderr


def test_promtool_accepts_the_stack_and_compose_configs(tmp_path: Path) -> None:
    promtool = _promtool()
    stack = _stack_module()
    engine = stack.Prometheus()  # type: ignore[attr-defined]
    engine.dir = tmp_path
    stack_config = engine.write_config()
    targets = json.loads((tmp_path / "targets" / "smartcourse.json").read_text())
    assert {group["labels"]["process"] for group in targets} == {"api", *metrics.DEFAULT_PORTS}
    compose = tmp_path / "compose"
    compose.mkdir()
    # The compose file names its rules by their path inside the container: check it beside a copy of them.
    text = (REPO / "ops" / "prometheus" / "prometheus.yml").read_text()
    (compose / "prometheus.yml").write_text(text.replace("/etc/prometheus/alerts.yml", "alerts.yml"))
    shutil.copy(REPO / "ops" / "prometheus" / "alerts.yml", compose / "alerts.yml")
    for config in (stack_config, compose / "prometheus.yml"):
        out = subprocess.run([promtool, "check", "config", str(config)], capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stdout + out.stderr


def test_the_dashboards_json_is_up_to_date_and_names_known_metrics() -> None:
    out = subprocess.run(
        [sys.executable, str(REPO / "ops" / "grafana" / "dashboards.py"), "--check"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    names = {
        "smartcourse_state_refreshed_timestamp_seconds",
        *(f"smartcourse_{n}" for n in ("outbox_backlog", "outbox_oldest_age_seconds", "outbox_retrying")),
        *(f"smartcourse_{n}" for n in ("dead_letters_pending", "dead_letters_pending_all")),
        *(f"smartcourse_{n}" for n in ("workflow_runs_recorded", "enrollment_backlog")),
        "smartcourse_enrollment_backlog_oldest_age_seconds",
        *(f"smartcourse_{n}" for n in ("email_backlog", "email_backlog_oldest_age_seconds", "email_retrying")),
    }
    for collector in list(metrics.REGISTRY._collector_to_names):  # every metric this code base defines
        names.update(metrics.REGISTRY._collector_to_names[collector])
    dashboards = sorted((REPO / "ops" / "grafana" / "dashboards").glob("*.json"))
    assert len(dashboards) == 5
    for path in dashboards:
        for panel in json.loads(path.read_text())["panels"]:
            assert panel["datasource"]["uid"] == "prometheus"
            for target in panel["targets"]:
                used = set(re.findall(r"smartcourse_[a-z_]+", target["expr"]))
                used = {re.sub(r"_bucket$", "", n) for n in used}
                assert used <= names, (path.name, panel["title"], used - names)
                assert used or target["expr"].startswith("sum by (process) (up{"), target["expr"]


def test_the_assistant_outcomes_are_named_as_they_are_labelled() -> None:
    """The metric's `outcome` is the stored outcome (`clarify`), the dashboard's key a participle (`clarified`): the
    help text and docs/operations.md name the values the label really takes, and the mapping."""
    from smartcourse.models import AI_OUTCOMES

    described = re.search(r"\(([^()]*)\)$", metrics.ASSISTANT_INTERACTIONS._documentation)
    assert described is not None and described.group(1).split(", ") == list(AI_OUTCOMES)
    row = next(
        line for line in (REPO / "docs" / "operations.md").read_text().splitlines() if "assistant_interact" in line
    )
    assert all(f"`{outcome}`" in row for outcome in AI_OUTCOMES) and "`clarified`" in row


def test_a_second_run_serves_its_side_metrics_on_free_ports(monkeypatch: pytest.MonkeyPatch) -> None:
    """explore16 F5: a second `smartcourse run` on the host found 9101/9104 taken, logged it, and the default ports
    went on serving the first instance's figures to whoever scraped them for the second."""
    import socket

    from smartcourse import cli

    with socket.socket() as held, socket.socket() as spare:
        held.bind(("127.0.0.1", 0))
        held.listen()
        taken = held.getsockname()[1]
        spare.bind(("127.0.0.1", 0))
        free = spare.getsockname()[1]
        spare.close()
        monkeypatch.setitem(metrics.DEFAULT_PORTS, "worker", taken)
        monkeypatch.setitem(metrics.DEFAULT_PORTS, "celery", free)
        env = {"SMARTCOURSE_METRICS_PORT_RELAY": "9999", "SMARTCOURSE_METRICS_PORT_CONSUMERS": "off"}
        ports = cli.side_metrics_ports(env, ["worker", "celery", "relay", "consumers"])
    assert ports["worker"] not in (taken, 0)
    assert env["SMARTCOURSE_METRICS_PORT_WORKER"] == str(ports["worker"])
    assert ports["celery"] == free  # the default, free: kept
    assert ports["relay"] == 9999 and env["SMARTCOURSE_METRICS_PORT_RELAY"] == "9999"  # the operator's choice
    assert "consumers" not in ports and env["SMARTCOURSE_METRICS_PORT_CONSUMERS"] == "off"


def test_run_tells_the_stacks_prometheus_where_its_metrics_are(tmp_path: Path) -> None:
    """explore24 F6: on other ports than the defaults, every SmartCourse target of the stack's Prometheus was down."""
    from smartcourse.cli import write_scrape_targets

    assert write_scrape_targets({}, 8241, {"worker": 9311}) is None  # no stack: nothing written
    env = {"PROMETHEUS_TARGETS_DIR": str(tmp_path)}
    path = write_scrape_targets(env, 8241, {"worker": 9311, "celery": 9104})
    assert path is not None and path.parent == tmp_path
    groups = json.loads(path.read_text())
    assert groups == [
        {"targets": ["127.0.0.1:8241"], "labels": {"process": "api"}},
        {"targets": ["127.0.0.1:9311"], "labels": {"process": "worker"}},
    ]  # celery on its default port: the stack's own file lists it already
    assert write_scrape_targets(env, 8000, {"worker": 9101}) is None


async def test_the_failure_series_alerts_watch_start_at_zero() -> None:
    """explore25 F2: `increase()`/`rate()` of a series that appears already at 1 is 0, so the first missing file, the
    first failed workflow, task or outbox publish of a process's life raised no alert."""
    import asyncio

    from prometheus_client import REGISTRY, generate_latest

    from smartcourse.services.outbox import run_relay
    from workflows.metrics import MetricsInterceptor

    MetricsInterceptor()
    stop = asyncio.Event()
    stop.set()
    await run_relay(None, None, stop=stop)  # type: ignore[arg-type]  # stopped before its first round
    text = generate_latest(REGISTRY).decode()
    for series in (
        'smartcourse_publish_materials_skipped_total{reason="missing"}',
        'smartcourse_workflow_runs_total{outcome="failed",workflow="EnrollmentWorkflow"}',
        'smartcourse_workflow_runs_total{outcome="failed",workflow="CoursePublishingWorkflow"}',
        'smartcourse_outbox_failures_total{event_type="enrollment.created"}',
    ):
        assert series in text, series
