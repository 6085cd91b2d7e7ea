"""`db.insert_from_arrays`: one statement text for any number of rows, its parameters one list per column."""

from __future__ import annotations

import pytest
from sqlalchemy import Float, String
from sqlalchemy.dialects import postgresql

from smartcourse.db import arrays, insert_from_arrays
from smartcourse.models import AnalyticsCounter

COLUMNS = (("metric", String()), ("bucket", String()), ("value", Float()))


def test_rows_become_one_array_per_column() -> None:
    params = arrays(COLUMNS, [("a", "x", 1.0), ("b", "y", 2.5)])
    assert params == {"rows_metric": ["a", "b"], "rows_bucket": ["x", "y"], "rows_value": [1.0, 2.5]}
    assert arrays(COLUMNS, []) == {"rows_metric": [], "rows_bucket": [], "rows_value": []}
    with pytest.raises(ValueError):
        arrays(COLUMNS, [("a", "x")])  # a short row is an error, never a shifted column


def test_the_statement_unnests_named_columns() -> None:
    statement = insert_from_arrays(AnalyticsCounter.__table__, COLUMNS)
    sql = str(statement.compile(dialect=postgresql.asyncpg.dialect()))
    assert "INSERT INTO analytics_counters (metric, bucket, value" in sql
    assert "unnest($" in sql and "(metric, bucket, value)" in sql
