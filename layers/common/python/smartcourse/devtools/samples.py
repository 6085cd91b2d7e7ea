"""Writes events/samples/<function>.json: an API Gateway (HTTP API v2) event per HTTP function, as Lambda sends it."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

from smartcourse.functions_registry import all_functions

# Example bodies: valid requests, so `smartcourse invoke` shows a real answer.
BODIES: dict[str, dict[str, Any]] = {
    "auth_register": {
        "email": "new.student@example.com",
        "password": "a-long-password",
        "full_name": "New Student",
        "role": "student",
    },
    "auth_login": {"email": "new.student@example.com", "password": "a-long-password"},
    "auth_refresh": {"refresh_token": "paste-a-refresh-token"},
    "auth_logout": {"refresh_token": "paste-a-refresh-token"},
    "update_user": {"bio": "I teach distributed systems."},
    "create_course": {
        "title": "Event-driven Systems",
        "description": "Outbox, Kafka, Temporal.",
        "category": "engineering",
    },
    "update_course": {"title": "Event-driven Systems, 2nd edition"},
    "create_module": {"title": "Foundations"},
    "update_module": {"title": "Foundations (revised)"},
    "create_lesson": {"title": "Why an outbox", "type": "text", "content": "# Why\nState and events commit together."},
    "update_lesson": {"content": "# Why\nRevised."},
    "enroll": {"course_id": "00000000-0000-4000-8000-000000000001"},
    "submit_quiz": {"answers": [1, 0]},
    "ai_ask": {"course_id": "00000000-0000-4000-8000-000000000001", "question": "Why use an outbox?"},
    "ai_ask_stream": {"course_id": "00000000-0000-4000-8000-000000000001", "question": "Why use an outbox?"},
    "ai_generate_summary": {"course_id": "00000000-0000-4000-8000-000000000001"},
    "ai_generate_objectives": {"course_id": "00000000-0000-4000-8000-000000000001"},
    "ai_generate_quiz": {"course_id": "00000000-0000-4000-8000-000000000001", "num_questions": 3},
    "ai_explain": {"course_id": "00000000-0000-4000-8000-000000000001", "concept": "outbox", "level": "beginner"},
    "ai_save_generated_quiz": {"module_id": "00000000-0000-4000-8000-000000000001"},
}

EXAMPLE_ID = "00000000-0000-4000-8000-000000000001"
TOKEN_NOTE = "Bearer paste-an-access-token-from-POST-/auth/login"


def api_gateway_event(method: str, path: str, *, body: dict[str, Any] | None, authorized: bool) -> dict[str, Any]:
    params = {seg[1:-1]: EXAMPLE_ID for seg in path.split("/") if seg.startswith("{")}
    raw_path = path
    for name, value in params.items():
        raw_path = raw_path.replace("{" + name + "}", value)
    headers = {"accept": "application/json", "host": "api.smartcourse.local", "user-agent": "sample"}
    if body is not None:
        headers["content-type"] = "application/json"
    if authorized:
        headers["authorization"] = TOKEN_NOTE
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": f"{method} {path}",
        "rawPath": raw_path,
        "rawQueryString": "",
        "headers": headers,
        "requestContext": {
            "accountId": "000000000000",
            "apiId": "local",
            "domainName": "api.smartcourse.local",
            "domainPrefix": "api",
            "http": {
                "method": method,
                "path": raw_path,
                "protocol": "HTTP/1.1",
                "sourceIp": "127.0.0.1",
                "userAgent": "sample",
            },
            "requestId": str(uuid.UUID(int=0)),
            "routeKey": f"{method} {path}",
            "stage": "$default",
            "time": "22/Nov/2026:00:00:00 +0000",
            "timeEpoch": 1795305600000,
        },
        "isBase64Encoded": False,
    }
    if params:
        event["pathParameters"] = params
    if body is not None:
        event["body"] = json.dumps(body)
    return event


def write_samples(directory: Path) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for fn in all_functions():
        if not fn.routes:
            continue
        method, path = fn.routes[0]
        secured = fn.name not in {
            "auth_register", "auth_login", "auth_refresh", "auth_logout", "health", "list_courses",
            "get_course", "get_instructor", "verify_certificate",
        }  # fmt: skip
        body = BODIES.get(fn.name)
        target = directory / f"{fn.name}.json"
        target.write_text(json.dumps(api_gateway_event(method, path, body=body, authorized=secured), indent=2) + "\n")
        written.append(target)
    return written
