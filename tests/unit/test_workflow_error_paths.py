"""A workflow's error as `GET /workflows/{id}` shows it to a student or an instructor: the server's file paths
replaced (explore40 F8: a student read `/srv/.../var/files/certificates`); admins read them whole."""

from __future__ import annotations

import pytest

from smartcourse.services.operations import without_paths


@pytest.mark.parametrize(
    ("error", "shown"),
    [
        (
            "FileExistsError: [Errno 17] File exists: '/tmp/explore40/var/files/certificates'",
            "FileExistsError: [Errno 17] File exists: '<server path>'",
        ),
        (
            "OSError: Unable to created lance dataset at /srv/var/index/course_1: Not a directory (os error 20)",
            "OSError: Unable to created lance dataset at <server path>: Not a directory (os error 20)",
        ),
        ("ConnectError: http://127.0.0.1:8080/v1/models", "ConnectError: http://127.0.0.1:8080/v1/models"),
        ("ValueError: 3/4 chunks, s3://bucket/key/x", "ValueError: 3/4 chunks, s3://bucket/key/x"),
        ("TimeoutError", "TimeoutError"),
        (  # an API route named after its method is advice, not a server path (explore55 F6)
            "prerequisites_not_live: Restore them first (POST /courses/{id}/restore), or remove them",
            "prerequisites_not_live: Restore them first (POST /courses/{id}/restore), or remove them",
        ),
        (None, None),
    ],
)
def test_paths_are_replaced_and_the_rest_kept(error: str | None, shown: str | None) -> None:
    assert without_paths(error) == shown
