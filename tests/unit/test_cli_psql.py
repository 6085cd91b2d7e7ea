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


def test_psqls_own_dbname_picks_a_database_of_the_same_server() -> None:
    """explore25 F5: `smartcourse psql -d other` passed psql a second URI, which replaced the first, socket included."""
    from smartcourse.cli import with_database

    uri = "postgresql://postgres:@/postgres?host=/tmp/pg%20data"
    other = "postgresql://postgres:@/other?host=/tmp/pg%20data"
    for args in (["-d", "other"], ["-dother"], ["--dbname", "other"], ["--dbname=other"]):
        assert with_database(uri, [*args, "-c", "select 1"]) == (other, ["-c", "select 1"]), args
    assert with_database(uri, ["-c", "select 1"]) == (uri, ["-c", "select 1"])
    # A conninfo or a URI given to -d is psql's to read.
    assert with_database(uri, ["-d", "host=x dbname=y"]) == (uri, ["-d", "host=x dbname=y"])
    assert with_database(uri, ["--dbname=postgresql://h/db"]) == (uri, ["--dbname=postgresql://h/db"])
