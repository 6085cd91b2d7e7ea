"""The SAM template generator (`smartcourse template`): what a deployed function gets (review of the deploy side)."""

from __future__ import annotations

import json
import math
import re
from typing import Any

import pytest

from smartcourse.devtools.template import (
    LAMBDA_MAX_REQUEST_BYTES,
    build_template,
    file_store_calls,
    logical_id,
    port_calls,
)
from smartcourse.functions_registry import all_functions


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return build_template()


def env(template: dict[str, Any]) -> dict[str, Any]:
    return dict(template["Globals"]["Function"]["Environment"]["Variables"])


def props(template: dict[str, Any], name: str) -> dict[str, Any]:
    return dict(template["Resources"][logical_id(name)]["Properties"])


def statements(template: dict[str, Any], name: str) -> list[Any]:
    (policy,) = props(template, name)["Policies"]
    return list(policy["Statement"])


def test_deployed_functions_always_run_in_production(template: dict[str, Any]) -> None:
    # A stage named `test` must not lift the rate limits or show the detailed /health (M1).
    assert env(template)["SMARTCOURSE_ENV"] == "production"
    assert "Stage" not in str(env(template)["SMARTCOURSE_ENV"])


def test_the_handlers_strip_the_named_stage(template: dict[str, Any]) -> None:
    # HTTP API payload 2.0 sends /<stage>/health under a named stage (H1).
    assert template["Resources"]["HttpApi"]["Properties"]["StageName"] == {"Ref": "Stage"}
    assert env(template)["API_BASE_PATH"] == {"Fn::Sub": "/${Stage}"}


def test_secrets_are_not_in_the_environment(template: dict[str, Any]) -> None:
    variables = env(template)
    for name in ("JWT_SECRET", "DATABASE_URL", "REDIS_URL", "MONGODB_URL", "LLM_API_KEY", "METRICS_TOKEN"):
        assert name not in variables
    assert variables["SMARTCOURSE_SECRETS_ARN"] == {"Ref": "SecretsArn"}
    read = {"Effect": "Allow", "Action": ["secretsmanager:GetSecretValue"], "Resource": {"Ref": "SecretsArn"}}
    for fn in all_functions():
        assert read in statements(template, fn.name), fn.name


def test_file_store_calls_are_found_through_the_services() -> None:
    calls = {fn.name: file_store_calls(fn) for fn in all_functions()}
    assert calls["get_certificate_pdf"] == {"get"}
    assert calls["get_material"] == {"get", "presigned_url"}
    assert calls["upload_material"] == {"put", "delete"}  # the file of an upload refused after it was stored
    assert calls["delete_material"] == {"delete"}  # services.materials.delete_material deletes the file
    assert calls["erase_user"] == {"delete"}  # services.erasure deletes the erased account's certificate PDFs
    assert calls["withdraw_certificate"] == {"delete"}  # ... and services.certificates.withdraw the one withdrawn
    assert calls["reissue_certificate"] == {"put"}  # services.certificates.reissue renders the PDF again
    assert {name for name, found in calls.items() if found} == {
        "get_certificate_pdf", "get_material", "upload_material", "delete_material", "erase_user",
        "withdraw_certificate", "reissue_certificate",
    }  # fmt: skip


def test_index_calls_are_found_through_the_services() -> None:
    reached = {fn.name: port_calls(fn)["vector_index"] for fn in all_functions()}
    assert "search" in reached["search_course"]  # services.search.retrieve: container.vector_index().search
    assert "search" in reached["ai_ask"]  # services.assistant -> services.search.retrieve
    assert "delete_source" in reached["delete_material"]  # services.materials.delete_material
    assert not reached["health"] and not reached["upload_material"]


def test_index_access_is_what_each_function_calls(template: dict[str, Any]) -> None:
    def index_actions(name: str) -> set[str]:
        return {
            action
            for st in statements(template, name)
            if isinstance(st, dict) and "Action" in st and "Path" in str(st["Resource"])
            for action in st["Action"]
        }

    assert index_actions("search_course") == {"s3:GetObject"}
    assert index_actions("delete_material") == {"s3:GetObject", "s3:PutObject", "s3:DeleteObject"}
    assert index_actions("get_material") == set()


def test_bucket_access_is_what_each_function_calls(template: dict[str, Any]) -> None:
    def s3_actions(name: str) -> set[str]:
        return {
            action
            for st in statements(template, name)
            if isinstance(st, dict) and "Action" in st and "MaterialsBucket.Arn" in str(st["Resource"])
            for action in st["Action"]
            if action.startswith("s3:")
        }

    assert s3_actions("get_certificate_pdf") == {"s3:GetObject", "s3:ListBucket"}
    assert s3_actions("get_material") == {"s3:GetObject", "s3:ListBucket"}
    assert s3_actions("upload_material") == {"s3:PutObject", "s3:DeleteObject"}
    assert s3_actions("delete_material") == {"s3:DeleteObject"}
    assert s3_actions("health") == set()
    for fn in all_functions():
        assert not any("S3CrudPolicy" in str(p) for p in props(template, fn.name)["Policies"])


def test_the_msk_consumer_reports_partial_batches_and_can_authenticate(template: dict[str, Any]) -> None:
    consumers = [fn for fn in all_functions() if getattr(fn.module, "CONSUMES", None)]
    assert consumers
    params = template["Parameters"]
    assert params["MskAuth"]["Default"] == "IAM"
    assert set(params["MskAuth"]["AllowedValues"]) == {"IAM", "SASL_SCRAM_512", "NONE"}
    groups: list[str] = []
    for fn in consumers:
        events = {k: v["Properties"] for k, v in props(template, fn.name)["Events"].items() if v["Type"] == "MSK"}
        # One topic per event source mapping (Lambda and CloudFormation take exactly one: explore15 F1), every
        # topic the consumer reads covered, each mapping with a consumer group of its own.
        assert sorted(t for kafka in events.values() for t in kafka["Topics"]) == sorted(set(fn.module.CONSUMES))
        for name, kafka in events.items():
            (topic,) = kafka["Topics"]
            assert name.startswith("Kafka") and name.isalnum()
            assert kafka["ConsumerGroupId"] == f"{fn.name}.{topic}"
            groups.append(kafka["ConsumerGroupId"])
            assert kafka["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
            assert kafka["ProvisionedPollerConfig"]["MinimumPollers"] >= 1  # Kafka partial batch responses need it
            # The condition on the whole property: inside the list it left [] under IAM (explore15 F2).
            auth = kafka["SourceAccessConfigurations"]["Fn::If"]
            assert auth[0] == "MskSaslAuth" and auth[2] == {"Ref": "AWS::NoValue"}
            assert auth[1] == [{"Type": "SASL_SCRAM_512_AUTH", "URI": {"Ref": "MskSaslSecretArn"}}]
        conditional = [st["Fn::If"] for st in statements(template, fn.name) if "Fn::If" in st]
        assert {c[0] for c in conditional} == {"MskIamAuth", "MskSaslAuth"}
        iam = next(c[1] for c in conditional if c[0] == "MskIamAuth")
        assert {"kafka-cluster:Connect", "kafka-cluster:ReadData", "kafka-cluster:AlterGroup"} <= set(iam["Action"])
        group_arn = iam["Resource"][2]["Fn::Sub"][0]
        assert group_arn.endswith(f"group/${{Cluster}}/{fn.name}.*")  # each mapping's group
    assert len(groups) == len(set(groups))  # AWS: unique among the account's Kafka event sources


def test_the_gateway_exposes_the_headers_the_app_exposes(template: dict[str, Any]) -> None:
    """explore15 F5: an HTTP API answers CORS itself and ignores the functions' headers; it exposed Retry-After alone,
    so a browser could not page (Link, X-Total-Count), follow a create (Location) or report a trace id."""
    from smartcourse.config import CORS_ALLOW_HEADERS, CORS_EXPOSE_HEADERS, CORS_METHODS

    cors = template["Resources"]["HttpApi"]["Properties"]["CorsConfiguration"]["Fn::If"][1]
    assert cors["ExposeHeaders"] == list(CORS_EXPOSE_HEADERS)
    assert {"Link", "X-Total-Count", "Location", "X-Trace-Id", "Retry-After"} <= set(cors["ExposeHeaders"])
    assert cors["AllowHeaders"] == list(CORS_ALLOW_HEADERS) and cors["AllowMethods"] == list(CORS_METHODS)


def test_functions_can_run_in_a_vpc(template: dict[str, Any]) -> None:
    vpc = template["Globals"]["Function"]["VpcConfig"]["Fn::If"]
    assert vpc[0] == "HasVpc"
    assert vpc[1] == {"SubnetIds": {"Ref": "SubnetIds"}, "SecurityGroupIds": {"Ref": "SecurityGroupIds"}}
    assert vpc[2] == {"Ref": "AWS::NoValue"}
    assert template["Parameters"]["SubnetIds"]["Type"] == "CommaDelimitedList"
    assert "HasVpc" in template["Conditions"]


def test_the_settings_a_deployed_function_needs_are_set(template: dict[str, Any]) -> None:
    variables = env(template)
    for name, param in {
        "PUBLIC_BASE_URL": "PublicBaseUrl",
        "CORS_ORIGINS": "CorsOrigins",
        "LLM_BASE_URL": "LlmBaseUrl",
        "EMBEDDINGS_BASE_URL": "EmbeddingsBaseUrl",
        "INSTRUCTOR_REGISTRATION": "InstructorRegistration",
        "NAME_CHANGES": "NameChanges",
    }.items():
        assert variables[name] == {"Ref": param}
        assert param in template["Parameters"]
    # A deployment's policies take only the values the settings accept (explore71 F11: no parameter set them).
    assert template["Parameters"]["InstructorRegistration"]["AllowedValues"] == ["open", "admins"]
    assert template["Parameters"]["NameChanges"]["AllowedValues"] == ["anyone", "admins"]
    assert "Default" not in template["Parameters"]["PublicBaseUrl"]  # links must not point to 127.0.0.1
    assert variables["INDEX_URI"]["Fn::If"][0] == "HasIndexUri"  # never var/index under the read-only /var/task
    assert variables["OTEL_TRACES_EXPORTER"] == {"Fn::If": ["HasOtelExporter", "otlp", "none"]}
    assert str(variables["SMARTCOURSE_DATA_DIR"]).startswith("/tmp/")
    cors = template["Resources"]["HttpApi"]["Properties"]["CorsConfiguration"]["Fn::If"]
    assert cors[0] == "HasCors" and cors[1]["AllowOrigins"] == {"Fn::Split": [",", {"Ref": "CorsOrigins"}]}


def test_the_upload_limit_fits_a_lambda_request(template: dict[str, Any]) -> None:
    limit = int(env(template)["MAX_UPLOAD_BYTES"])
    base64_body = 4 * math.ceil((limit + 16 * 1024) / 3)  # the file, its multipart framing, base64-encoded
    assert base64_body + 64 * 1024 <= LAMBDA_MAX_REQUEST_BYTES  # and the rest of the event


def test_assistant_functions_get_more_memory(template: dict[str, Any]) -> None:
    base = template["Globals"]["Function"]
    for fn in all_functions():
        if fn.name.startswith("ai_"):
            assert props(template, fn.name)["MemorySize"] > base["MemorySize"]
            assert props(template, fn.name).get("Timeout", base["Timeout"]) <= 30  # HTTP API's ceiling


def test_the_bucket_name_is_an_output(template: dict[str, Any]) -> None:
    assert template["Outputs"]["MaterialsBucketName"]["Value"] == {"Ref": "MaterialsBucket"}


def test_every_log_is_kept_for_the_chosen_days_and_the_bucket_takes_tls_only(template: dict[str, Any]) -> None:
    """explore15 F16: no retention (CloudWatch keeps a function's logs for ever), no access log, a bucket that
    answered plain HTTP."""
    resources = template["Resources"]
    retention = {"Ref": "LogRetentionDays"}
    for fn in all_functions():
        group = props(template, fn.name)["LoggingConfig"]["LogGroup"]["Ref"]
        assert resources[group]["Type"] == "AWS::Logs::LogGroup"
        assert resources[group]["Properties"]["RetentionInDays"] == retention
    access = resources["HttpApi"]["Properties"]["AccessLogSettings"]
    assert access["DestinationArn"] == {"Fn::GetAtt": "ApiAccessLogs.Arn"}
    assert resources["ApiAccessLogs"]["Properties"]["RetentionInDays"] == retention
    fields = json.loads(access["Format"])
    assert {"requestId", "status", "routeKey", "integrationError"} <= set(fields)
    assert (
        template["Parameters"]["LogRetentionDays"]["Default"]
        in template["Parameters"]["LogRetentionDays"]["AllowedValues"]
    )
    (deny,) = resources["MaterialsBucketPolicy"]["Properties"]["PolicyDocument"]["Statement"]
    assert deny["Effect"] == "Deny" and deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    assert {"Fn::Sub": "${MaterialsBucket.Arn}/*"} in deny["Resource"]


def test_parameter_mistakes_are_refused_before_anything_is_created(template: dict[str, Any]) -> None:
    stage = re.compile(template["Parameters"]["Stage"]["AllowedPattern"])
    assert stage.fullmatch("production") and not stage.fullmatch("$default")  # `$` cannot be in a LayerName
    assert set(template["Rules"]) == {"VpcNeedsSubnetsAndSecurityGroups", "MskSaslNeedsItsSecret"}
    sasl = template["Rules"]["MskSaslNeedsItsSecret"]
    assert sasl["RuleCondition"] == {"Fn::Equals": [{"Ref": "MskAuth"}, "SASL_SCRAM_512"]}


def test_a_zip_function_reaching_the_vector_index_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    """explore15 F3: `enrollment_review` searched the index from a zip function, whose layer has neither lancedb nor
    pyarrow: every review of a student with a failed quiz would have failed in Lambda. The generator now refuses."""
    from smartcourse.devtools import template as generator

    assert "enrollment_review" in generator.IMAGE_FUNCTIONS
    without = {k: v for k, v in generator.IMAGE_FUNCTIONS.items() if k != "enrollment_review"}
    monkeypatch.setattr(generator, "IMAGE_FUNCTIONS", without)
    with pytest.raises(ValueError, match="enrollment_review reaches the vector index"):
        generator.build_template()
