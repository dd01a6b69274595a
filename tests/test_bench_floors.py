"""The benchmark's floors (bench/bare_app.py) do what their names say: a 304 is a 304, a
create writes its three rows. A floor that silently answered 200 would make
``floor_not_modified_vs_get`` compare a GET with itself."""

from __future__ import annotations

import sqlite3

from bench.bare_app import create_bare_app, create_bare_table


def test_the_floor_read_answers_304_to_its_tag_and_the_create_writes_three_rows(tmp_path):
    path = tmp_path / "bare.db"
    url = f"sqlite:///{path}"
    create_bare_table(url)
    client = create_bare_app(url).test_client()
    first = client.get("/bare/read")
    assert first.status_code == 200 and first.get_json()["name"] == "Support Email"
    tag = first.headers["ETag"]
    assert tag.startswith('"') and tag.endswith('"')  # strong, quoted
    again = client.get("/bare/read", headers={"If-None-Match": tag})
    assert again.status_code == 304 and again.data == b""
    assert again.headers["ETag"] == tag
    other = client.get("/bare/read", headers={"If-None-Match": '"another"'})
    assert other.status_code == 200
    created = client.post("/bare/create", json={"name": "Floor"})
    assert created.status_code == 201
    row_id = created.get_json()["id"]
    with sqlite3.connect(path) as db:
        names = db.execute("SELECT name FROM bench_bare_rows WHERE id = ?", (row_id,)).fetchall()
        assert names == [("Floor",)]
        for table, kind in (("bench_bare_audit", "created"), ("bench_bare_events", "row.created")):
            rows = db.execute(f"SELECT kind FROM {table} WHERE row_id = ?", (row_id,)).fetchall()
            assert rows == [(kind,)]
