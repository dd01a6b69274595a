"""The import reads its file's rows in place (``imports.read_rows``): the same rows, row
numbers and errors as ``csv.reader`` over ``io.StringIO`` (the buffer it no longer builds)."""

from __future__ import annotations

import csv
import io

import pytest

from core.services import imports

TEXTS = [
    "name,channel_type\nA,sms\nB,email\n",
    "name,channel_type\nA,sms\nB,email",  # no newline at the end
    "name,channel_type\r\nA,sms\r\nB,email\r\n",  # CRLF
    'name,metadata\n"Two\nlines",x\n"Three\r\n\nlines","{""a"": 1}"\nlast,y\n',  # quoted newlines
    "name,channel_type\n\n  \nA,sms\n,\nB,email\n\n",  # blank lines and blank rows
    "name,channel_type\n",  # a header alone
    "name,channel_type",
    "\n\nname\nA\n",
    'name\n"unterminated\nA\n',  # a quote never closed: csv reads to the end
    "naïve,☃\n日本,x\n",
    "",
]


def _with_string_io(text: str) -> list:
    reader = csv.reader(io.StringIO(text))
    next(reader, None)
    return [(reader.line_num, cells) for cells in reader if any(cell.strip() for cell in cells)]


@pytest.mark.parametrize("text", TEXTS)
def test_rows_are_those_of_a_string_io_reader(text):
    assert list(imports.read_rows(text)) == _with_string_io(text)
    assert next(csv.reader(imports._lines(text)), None) == next(csv.reader(io.StringIO(text)), None)


@pytest.mark.parametrize("text", TEXTS)
def test_lines_are_those_of_string_io(text):
    assert list(imports._lines(text)) == io.StringIO(text).readlines()


def test_a_csv_error_is_raised_alike():
    text = "name\na\rb,c\n"  # a bare carriage return inside an unquoted field
    with pytest.raises(csv.Error):
        _with_string_io(text)
    with pytest.raises(csv.Error):
        list(imports.read_rows(text))
