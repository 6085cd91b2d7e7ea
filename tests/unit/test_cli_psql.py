"""`smartcourse psql`: the product's database URL as psql takes it, the password kept off the command line."""

from __future__ import annotations

from smartcourse.cli import libpq_uri


def test_the_driver_goes_and_the_password_is_handed_apart() -> None:
    uri, password = libpq_uri("postgresql+asyncpg://app:s3cret@db.example.org:5432/smartcourse?ssl=require")
    assert (uri, password) == ("postgresql://app@db.example.org:5432/smartcourse?sslmode=require", "s3cret")


def test_a_unix_socket_url_keeps_its_host() -> None:
    uri, password = libpq_uri("postgresql+asyncpg://postgres:@/postgres?host=/tmp/data/postgres")
    # libpq decodes the %2F.
    assert uri == "postgresql://postgres@/postgres?host=%2Ftmp%2Fdata%2Fpostgres" and not password
