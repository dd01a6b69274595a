"""Checks the API tests share: the error envelope of DESIGN §4 and the whole database's state."""

from __future__ import annotations

from sqlalchemy import select

from core.extensions import db

STACK_TRACE_MARKERS = ("Traceback", 'File "', "line ", "Error:", ".py")


def assert_error(response, status: int, code: str) -> dict:
    """The response is the JSON error envelope with this status and code; returns ``error``."""
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/json"
    body = response.get_json()
    assert set(body) == {"error"}
    error = body["error"]
    assert error["code"] == code
    assert isinstance(error["message"], str) and error["message"]
    assert set(error) <= {"code", "message", "fields"}
    return error


def assert_fields(response, expected: set[str]) -> dict:
    """A 422 validation_error whose ``fields`` are exactly ``expected``; returns the fields map."""
    error = assert_error(response, 422, "validation_error")
    fields = error.get("fields", {})
    assert set(fields) == set(expected), fields
    for messages in fields.values():
        assert messages and all(isinstance(m, str) and m for m in messages)
    return fields


def database_state() -> dict[str, list[tuple]]:
    """Every row of every table, sorted: equal before and after means nothing was written."""
    db.session.rollback()  # end the test's read transaction so that we see what is committed
    state = {}
    for table in db.metadata.sorted_tables:
        rows = db.session.execute(select(table)).all()
        state[table.name] = sorted(tuple(map(repr, row)) for row in rows)
    db.session.rollback()
    return state


def count_rows(model) -> int:
    """How many rows a model's table holds (committed)."""
    db.session.rollback()
    return len(db.session.execute(select(model.id)).all())
