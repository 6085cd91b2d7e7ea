"""Settings from one AWS Secrets Manager secret: SMARTCOURSE_SECRETS_ARN names a secret whose SecretString is a
JSON object of setting variables (`{"JWT_SECRET": "...", "DATABASE_URL": "...", "REDIS_URL": "..."}`).

A deployed function reads it once, at cold start, so its secrets are never in its environment (which anyone with
lambda:GetFunctionConfiguration can read). A variable set in the environment wins over the secret's value.
"""

from __future__ import annotations

import json
import os
from typing import Any

from pydantic.fields import FieldInfo
from pydantic_settings import PydanticBaseSettingsSource

SECRETS_ARN_VAR = "SMARTCOURSE_SECRETS_ARN"
#: botocore's limits on the read (seconds; attempts in all).
READ_LIMITS: dict[str, Any] = {
    "connect_timeout": 2,
    "read_timeout": 3,
    "retries": {"max_attempts": 2, "mode": "standard"},
}


def read_secret_values(arn: str) -> dict[str, str]:
    """The secret's JSON object, from the region its ARN names (arn:aws:secretsmanager:<region>:...)."""
    parts = arn.split(":")
    if len(parts) < 7 or parts[2] != "secretsmanager":
        raise ValueError(f"{SECRETS_ARN_VAR} is not a Secrets Manager secret ARN: {arn!r}")
    import boto3  # here, not at the top: every process reads its settings, few have a secret (boto3 is ~0.25 s)
    from botocore.config import Config

    # Bounded: botocore's defaults (60 s to connect, 60 s to read, retried) held a cold start 150 s against an
    # endpoint that never answered (a VPC without NAT or endpoint), far past Lambda's 10 s init, with no log line
    # naming the cause (explore15 F6). At most ~2 x (2 + 3) s, then an error that names the secret.
    config = Config(**READ_LIMITS)
    client = boto3.client("secretsmanager", region_name=parts[3], config=config)
    try:
        raw = client.get_secret_value(SecretId=arn).get("SecretString")
    except Exception as exc:
        raise RuntimeError(
            f"{SECRETS_ARN_VAR}: could not read {arn} from Secrets Manager in {parts[3]} ({type(exc).__name__}: "
            f"{exc}); in a VPC the function needs a NAT gateway or a Secrets Manager endpoint"
        ) from exc
    try:
        values = json.loads(raw or "")
    except ValueError:
        values = None
    if not isinstance(values, dict) or not all(isinstance(v, str) for v in values.values()):
        raise ValueError(f"{SECRETS_ARN_VAR}: the secret must be a JSON object of string values")
    return values


class SecretsManagerSettingsSource(PydanticBaseSettingsSource):
    """A pydantic-settings source: the secret's values, keyed by the settings' variable names."""

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False  # __call__ reads the whole secret at once

    def __call__(self) -> dict[str, Any]:
        arn = os.environ.get(SECRETS_ARN_VAR, "").strip()
        if not arn:
            return {}
        values = read_secret_values(arn)
        known = {field.alias or name for name, field in self.settings_cls.model_fields.items()}
        unknown = sorted(set(values) - known)
        if unknown:  # a typo would otherwise leave its setting at the default without a word
            raise ValueError(f"{SECRETS_ARN_VAR}: the secret has keys that name no setting: {unknown}")
        return values
