"""The function pack: template, function folders and local routes agree; handlers run as Lambda calls them."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import REPO


class _CfnLoader(yaml.SafeLoader):
    """Reads CloudFormation short-form tags (!Ref, !Sub, ...) should anyone write them."""


_CfnLoader.add_multi_constructor("!", lambda loader, suffix, node: None)


@pytest.fixture(autouse=True)
def _suite_container_back() -> Iterator[None]:
    """A handler runs in its own event loop, where `get_container()` builds a container of its own and installs
    it process-wide: put the suite's back after each test, or later tests talk to a stranger."""
    from smartcourse import bootstrap

    before = bootstrap._container
    yield
    bootstrap.set_container(before)


def template() -> dict[str, Any]:
    return yaml.load((REPO / "template.yaml").read_text(), Loader=_CfnLoader)


def test_template_is_generated_from_the_functions() -> None:
    from smartcourse.devtools.template import render_template

    assert (REPO / "template.yaml").read_text() == render_template(), "run `smartcourse template`"


def _function_folder(props: dict[str, Any]) -> str:
    """functions/<folder>/: the CodeUri of a zip function, the FUNCTION build argument of a container image."""
    if props["Properties"].get("PackageType") == "Image":
        return str(props["Metadata"]["DockerBuildArgs"]["FUNCTION"])
    return str(props["Properties"]["CodeUri"].strip("/").split("/")[1])


def test_template_functions_folders_and_routes_agree(app: Any) -> None:
    from smartcourse.devtools.template import IMAGE_DOCKERFILE, IMAGE_FUNCTIONS, logical_id
    from smartcourse.functions_registry import all_functions

    folders = {p.parent.name for p in (REPO / "functions").glob("*/app.py")}
    resources = template()["Resources"]
    in_template = {
        _function_folder(props): props for props in resources.values() if props["Type"] == "AWS::Serverless::Function"
    }
    assert set(in_template) == folders
    template_routes = {
        (ev["Properties"]["Method"], ev["Properties"]["Path"])
        for fn in in_template.values()
        for ev in fn["Properties"].get("Events", {}).values()
        if ev["Type"] == "HttpApi"
    }
    # What the local router serves, as its clients see it.
    local_routes = {(m.upper(), path) for path, ops in app.openapi()["paths"].items() for m in ops}
    assert template_routes == local_routes
    for fn in all_functions():
        resource = resources[logical_id(fn.name)]
        props = resource["Properties"]
        if fn.name in IMAGE_FUNCTIONS:  # lambda.Dockerfile copies the folder and runs app.handler
            assert props["PackageType"] == "Image" and resource["Metadata"]["Dockerfile"] == IMAGE_DOCKERFILE
            assert not {"Handler", "Runtime", "Layers", "CodeUri"} & set(props)
        else:
            assert props["Handler"] == "app.handler" and props["Layers"] == [{"Ref": "CommonLayer"}]
    assert "Layers" not in template()["Globals"]["Function"]  # an image function may have none


@pytest.mark.skipif(
    shutil.which("cfn-lint") is None and not (Path(sys.executable).parent / "cfn-lint").exists(),
    reason="cfn-lint not installed",
)
def test_template_passes_cfn_lint() -> None:
    exe = Path(sys.executable).parent / "cfn-lint"
    result = subprocess.run([str(exe), str(REPO / "template.yaml")], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr


#: The parameters a deploy must give (placeholders of the right shape), for the expansion below.
_REQUIRED_PARAMETERS = {
    "SecretsArn": "arn:aws:secretsmanager:eu-west-1:111122223333:secret:smartcourse-AbCdEf",
    "PublicBaseUrl": "https://learn.example.org",
    "TemporalAddress": "temporal.internal:7233",
    "KafkaBootstrapServers": "b-1.msk.internal:9098",
    "SchemaRegistryUrl": "http://registry.internal:8081",
    "LlmBaseUrl": "https://llm.example.org/v1",
    "LlmModel": "a-model",
    "EmbeddingsBaseUrl": "https://llm.example.org/v1",
    "MskClusterArn": "arn:aws:kafka:eu-west-1:111122223333:cluster/smartcourse/abcd-1234",
}


@pytest.mark.skipif(
    shutil.which("cfn-lint") is None and not (Path(sys.executable).parent / "cfn-lint").exists(),
    reason="cfn-lint not installed",
)
def test_the_expanded_template_passes_cfn_lint(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """cfn-lint checks a SAM template's own resources only: what the transform makes of them (an event source
    mapping per MSK event, the roles, the stage) went unchecked, and a mapping listing six topics (Lambda takes one)
    or an empty SourceAccessConfigurations would only have failed at deploy (explore15 F1, F2). Expanded with the
    SAM translator, as CloudFormation will, then linted."""
    pytest.importorskip("samtranslator")
    import json

    import yaml
    from samtranslator.translator.transform import transform

    class ManagedPolicies:  # what the translator would ask IAM: the ARNs of the AWS managed policies it attaches
        def load(self) -> dict[str, str]:
            names = (
                "AWSLambdaBasicExecutionRole",
                "AWSLambdaVPCAccessExecutionRole",
                "AWSLambdaMSKExecutionRole",
                "AWSXrayWriteOnlyAccess",
                "AWSXRayDaemonWriteAccess",
            )
            return {n: f"arn:aws:iam::aws:policy/service-role/{n}" for n in names}

    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")  # the translator fills AWS::Region in
    template = yaml.safe_load((REPO / "template.yaml").read_text())  # the generator writes only the long forms
    for name, resource in template["Resources"].items():  # as `sam package` leaves them: artefacts uploaded
        props = resource.get("Properties", {})
        for key in ("CodeUri", "ContentUri"):
            if key in props:
                props[key] = f"s3://deploy-artifacts/{name}"
        if props.get("PackageType") == "Image":
            props["ImageUri"] = f"111122223333.dkr.ecr.eu-west-1.amazonaws.com/smartcourse:{name}"
    expanded = transform(template, _REQUIRED_PARAMETERS, ManagedPolicies())
    kinds = [r["Type"] for r in expanded["Resources"].values()]
    assert "AWS::Lambda::EventSourceMapping" in kinds
    out = tmp_path / "expanded.json"
    out.write_text(json.dumps(expanded))
    exe = Path(sys.executable).parent / "cfn-lint"
    result = subprocess.run(
        [str(exe), "--regions", "eu-west-1", "--", str(out)], capture_output=True, text=True, timeout=300
    )
    # Errors only (E...): W1030 (the SASL secret's parameter behind its condition) and W1020 (a Sub the
    # translator writes) are warnings about what the transform generates.
    errors = [line for line in result.stdout.splitlines() if line.startswith("E")]
    assert not errors, result.stdout


def test_every_function_has_a_sample_event() -> None:
    folders = {p.parent.name for p in (REPO / "functions").glob("*/app.py")}
    samples = {p.stem for p in (REPO / "events" / "samples").glob("*.json")}
    missing = {f for f in folders if f not in samples and not any(s.startswith(f"{f}") for s in samples)}
    assert not missing, f"functions without a sample event: {sorted(missing)}"


def _invoke_in_fresh_loop(name: str, event: dict[str, Any]) -> dict[str, Any]:
    """As Lambda does: the handler in a thread of its own with its own event loop."""
    from smartcourse.cli import LambdaContext
    from smartcourse.functions_registry import load_function

    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    try:
        return dict(load_function(name).module.handler(event, LambdaContext(name)))
    finally:
        loop.close()


def _sample(name: str) -> dict[str, Any]:
    return dict(json.loads((REPO / "events" / "samples" / f"{name}.json").read_text()))


async def test_handlers_answer_sample_events_as_lambda_would(settings: Any) -> None:
    health = await asyncio.to_thread(_invoke_in_fresh_loop, "health", _sample("health"))
    assert health["statusCode"] == 200 and json.loads(health["body"])["engines"]["database"]["status"] == "up"
    listing = await asyncio.to_thread(_invoke_in_fresh_loop, "list_courses", _sample("list_courses"))
    assert listing["statusCode"] == 200 and "items" in json.loads(listing["body"])
    course = await asyncio.to_thread(_invoke_in_fresh_loop, "get_course", _sample("get_course"))
    assert course["statusCode"] == 404 and json.loads(course["body"])["code"] == "course_not_found"
    me = await asyncio.to_thread(_invoke_in_fresh_loop, "auth_me", _sample("auth_me"))
    assert me["statusCode"] == 401


def _under_named_stage(event: dict[str, Any], stage: str) -> dict[str, Any]:
    """The event as an HTTP API stage with a name sends it: /<stage> before the path (payload 2.0)."""
    event["rawPath"] = f"/{stage}{event['rawPath']}"
    event["requestContext"]["http"]["path"] = event["rawPath"]
    event["requestContext"]["stage"] = stage
    return event


async def test_handlers_answer_under_a_named_stage(settings: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """template.yaml deploys the HttpApi under the stage `Stage` and sets API_BASE_PATH=/<Stage>: the handler strips
    it (without it every route answers 404 in AWS), and only from paths that start with it."""
    from smartcourse import config
    from smartcourse.devtools.template import build_template

    env = build_template()["Globals"]["Function"]["Environment"]["Variables"]
    assert env["API_BASE_PATH"] == {"Fn::Sub": "/${Stage}"}
    monkeypatch.setenv("API_BASE_PATH", "/production")
    config.get_settings.cache_clear()
    try:
        staged_event = _under_named_stage(_sample("health"), "production")
        staged = await asyncio.to_thread(_invoke_in_fresh_loop, "health", staged_event)
        plain = await asyncio.to_thread(_invoke_in_fresh_loop, "health", _sample("health"))
        beta_event = _under_named_stage(_sample("health"), "beta")
        other = await asyncio.to_thread(_invoke_in_fresh_loop, "health", beta_event)
    finally:
        monkeypatch.delenv("API_BASE_PATH")
        config.get_settings.cache_clear()
    assert staged["statusCode"] == 200, staged
    assert plain["statusCode"] == 200, plain  # a custom domain's mapping sends the path without the stage
    assert other["statusCode"] == 404  # another prefix is a path of its own


def test_cli_invoke_prints_the_handler_response(settings: Any) -> None:
    env = {**os.environ, "SMARTCOURSE_LOG_LEVEL": "WARNING"}
    result = subprocess.run(
        [
            str(Path(sys.executable).parent / "smartcourse"),
            "invoke",
            "auth_register",
            "--event",
            "events/samples/auth_register.json",
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    response = json.loads(result.stdout)
    assert response["statusCode"] in (201, 409), response  # 409 when the sample's email already exists
    assert json.loads(response["body"]).get("email", "new.student@example.com") == "new.student@example.com"
