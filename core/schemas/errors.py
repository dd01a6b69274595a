"""The error envelope (DESIGN §4), the same on every /api path and status."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from core.schemas import Schema, declared, render_values


@declared
class ErrorDetail(Schema):
    """What went wrong: a stable code, a sentence, and every failing field with its messages."""

    code: Annotated[str, Field(description="Stable machine-readable code.")]
    message: str
    fields: Annotated[
        dict[str, list[str]], Field(description="Every failing field with its messages.")
    ] = None


@declared
class Error(Schema):
    """The error envelope."""

    error: ErrorDetail


def render_error(code: str, message: str, fields: dict | None = None) -> dict:
    """The envelope; ``fields`` only when some field failed."""
    detail = {"code": code, "message": message}
    if fields:
        detail["fields"] = fields
    return render_values(Error, {"error": render_values(ErrorDetail, detail)})
