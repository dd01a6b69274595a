"""Formula escaping of every CSV the product writes (core/csv_cells.py)."""

import csv
import io

import pytest

from core.csv_cells import csv_line, csv_lines, escape_cell, unescape_cell


@pytest.mark.parametrize(
    ("value", "written"),
    [
        ("=1+1", "'=1+1"),
        ("+15551234567", "'+15551234567"),
        ("-2", "'-2"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\tx", "'\tx"),
        ("\rx", "'\rx"),
        ('=HYPERLINK("http://evil")', '\'=HYPERLINK("http://evil")'),
        ("Support Email", "Support Email"),
        ("a=b", "a=b"),
        ("'quoted", "'quoted"),
        ("", ""),
        (None, ""),
        (True, "true"),
        (False, "false"),
        (3, "3"),
    ],
)
def test_cells_that_a_spreadsheet_would_run_are_escaped(value, written):
    assert escape_cell(value) == written
    if isinstance(value, str):
        assert unescape_cell(written) == value


def test_a_line_is_quoted_and_parses_back_to_the_escaped_cells():
    line = csv_line(["a,b", '=cmd|" /C calc"!A0', "+1", None])
    assert line.endswith("\r\n")
    assert next(csv.reader(io.StringIO(line))) == ["a,b", '\'=cmd|" /C calc"!A0', "'+1", ""]


def test_a_document_streams_its_header_then_its_rows():
    lines = list(csv_lines(["name", "number"], [["x", "+1"], ["-y", "2"]]))
    assert lines == ["name,number\r\n", "x,'+1\r\n", "'-y,2\r\n"]
