"""Every CSV the product writes goes through here: cells a spreadsheet would run are escaped.

A cell that starts with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return is read as a
formula by Excel, LibreOffice and Google Sheets ("CSV injection", OWASP). Such a cell is
written with a leading apostrophe, which every one of them shows as text and hides; the value
stays readable by a person and by a program that strips it. A phone number in E.164
(``+15551234567``) therefore downloads as ``'+15551234567``: the trade-off OWASP recommends,
since a number starting with ``+`` is exactly what an attacker's ``+cmd|...`` would look like.

Reading our own CSV back (the console's import) calls :func:`unescape_cell`, so a file
downloaded from the product imports again unchanged.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def escape_cell(value: object) -> str:
    """The text of one cell, safe to open in a spreadsheet (``None`` is an empty cell)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        text = "true" if value else "false"
    else:
        text = str(value)
    if text.startswith(FORMULA_STARTS):
        return "'" + text
    return text


def unescape_cell(text: str) -> str:
    """The value of a cell written by :func:`escape_cell` (other cells are returned as given)."""
    if len(text) > 1 and text[0] == "'" and text[1:].startswith(FORMULA_STARTS):
        return text[1:]
    return text


def csv_line(cells: Iterable[object]) -> str:
    """One CSV record (RFC 4180 quoting, CRLF line end), every cell escaped."""
    return csv_block([cells])


def csv_block(rows: Iterable[Iterable[object]]) -> str:
    """Several CSV records at once, as ``csv_line`` writes each (one writer for them all: a
    streamed export writes a chunk of rows at a time)."""
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\r\n").writerows(
        [escape_cell(cell) for cell in row] for row in rows
    )
    return buffer.getvalue()


def csv_lines(header: Iterable[str], rows: Iterable[Iterable[object]]) -> Iterator[str]:
    """A whole CSV document as lines, for a streamed response: the header, then every row."""
    yield csv_line(header)
    for row in rows:
        yield csv_line(row)
