"""The OpenAPI document is SDK-grade: Redocly CLI's recommended ruleset finds nothing, and
openapi-python-client generates a client, with no warning and no skipped operation, that drives
the API end to end. Both tools are installed (versions pinned) by tests/run in tests/.cache/."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import pytest
from sqlalchemy import select

from core.extensions import db
from core.models import Channel
from tests import factories

CACHE = Path(__file__).resolve().parents[1] / ".cache"
GENERATOR_VENV = CACHE / "openapi-python-client"
GENERATOR = GENERATOR_VENV / "bin" / "openapi-python-client"
REDOCLY = CACHE / "redocly" / "node_modules" / ".bin" / "redocly"
DRIVER = Path(__file__).with_name("sdk") / "drive_generated_client.py"


def _tool(path: Path) -> Path:
    if not path.exists():
        pytest.fail(
            f"{path} is missing: run `bash tests/run`, which installs the pinned OpenAPI tools "
            "(openapi-python-client from PyPI, Redocly CLI from npm) into tests/.cache/.",
            pytrace=False,
        )
    return path


@pytest.fixture
def document(client, tmp_path) -> tuple[dict, Path]:
    """/api/openapi.json as served, and a copy of it on disk."""
    spec = client.get("/api/openapi.json").get_json()
    path = tmp_path / "openapi.json"
    path.write_text(json.dumps(spec))
    return spec, path


def test_redocly_recommended_ruleset_finds_nothing(document):
    """`redocly lint --extends recommended`: 0 errors, 0 warnings, nothing ignored."""
    _, path = document
    result = subprocess.run(
        [str(_tool(REDOCLY)), "lint", str(path), "--extends", "recommended", "--format", "json"],
        capture_output=True,
        text=True,
        timeout=180,
        env={**os.environ, "REDOCLY_TELEMETRY": "off", "REDOCLY_SUPPRESS_UPDATE_NOTICE": "true"},
    )
    report = json.loads(result.stdout)
    problems = [(p["ruleId"], p["message"]) for p in report.get("problems", [])]
    assert report["totals"] == {"errors": 0, "warnings": 0, "ignored": 0}, problems
    assert result.returncode == 0


def _generate(spec_path: Path, out: Path) -> str:
    """Generate the client into ``out``; returns everything the generator printed."""
    result = subprocess.run(
        [str(_tool(GENERATOR)), "generate", "--path", str(spec_path), "--output-path", str(out)],
        capture_output=True,
        text=True,
        timeout=300,
        # The generator formats its output with ruff from its own environment.
        env={**os.environ, "PATH": f"{GENERATOR_VENV / 'bin'}{os.pathsep}{os.environ['PATH']}"},
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    return output


def _snake(operation_id: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", operation_id).lower()


def test_openapi_python_client_generates_every_operation_without_warning(document, tmp_path):
    """No warning, no skipped endpoint or schema, one module per operationId, models named
    after component names (never after prose titles)."""
    spec, path = document
    output = _generate(path, tmp_path / "client")
    assert "Warning" not in output and "Skipping" not in output, output
    package = tmp_path / "client" / "channels_api_client"
    generated = {p.stem for p in (package / "api").rglob("*.py") if p.stem != "__init__"}
    operation_ids = {op["operationId"] for item in spec["paths"].values() for op in item.values()}
    assert generated == {_snake(o) for o in operation_ids}
    models = {p.stem for p in (package / "models").glob("*.py")}
    for name in ("integration_sendgrid", "integration_sendgrid_create", "integration_console"):
        assert name in models
    assert not any(m.startswith(("send_grid", "console_writes", "amazon")) for m in models)


def test_the_generated_client_drives_the_api(document, server, tenant, tmp_path):
    """Integrations, a number, a domain, a channel of each type, a list page by cursor, a
    patch, a delete, and a 422 parsed into the generated Error model: through the client."""
    _, path = document
    _generate(path, tmp_path / "client")
    python = _tool(GENERATOR_VENV / "bin" / "python")
    site = tmp_path / "site"
    install = subprocess.run(
        [
            str(python),
            "-m",
            "pip",
            "install",
            "-q",
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            "--target",
            str(site),
            str(tmp_path / "client"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert install.returncode == 0, install.stdout + install.stderr
    key = factories.make_api_key(tenant, scope="write")
    db.session.commit()
    db.session.rollback()  # end this thread's transaction: the server writes from now on
    result = subprocess.run(
        [str(python), str(DRIVER)],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(site), "CHANNELS_URL": server, "CHANNELS_KEY": key},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    seen = json.loads(result.stdout.strip().splitlines()[-1])
    assert seen["statuses"] == {"sms": "available", "email": "pending_verification"}
    assert seen["pages"] == [["SDK Email"], ["SDK SMS"]] and seen["last_cursor"] is None
    assert seen["renamed"] == "SDK SMS renamed"
    assert seen["error"] == {
        "code": "validation_error",
        "fields": {"send_from_phone_number": ["This is not a valid phone number."]},
    }
    assert seen["after_delete"] == "not_found"
    db.session.rollback()
    names = db.session.scalars(select(Channel.name).where(Channel.tenant_id == tenant.id)).all()
    assert names == ["SDK SMS renamed"]
