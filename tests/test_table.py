"""Delimited tables: physical line numbers, and broken records that cost only themselves."""

from __future__ import annotations

from pathlib import Path

import pytest

from ingest.fetch import open_text
from ingest.table import Record, read_table
from tileserver.core.errors import IngestError


def records(tmp_path: Path, content: str) -> list[Record]:
    path = tmp_path / "t.csv"
    path.write_text(content, encoding="utf-8")
    with open_text(path) as text:
        return list(read_table(text, path).records)


def test_records_start_on_their_physical_line(tmp_path: Path) -> None:
    found = records(tmp_path, 'a;b\r\n1;"two\r\nlines"\r\n\r\n3;x\r\n')
    assert found == [Record(2, ["1", "two\r\nlines"], ""), Record(4, [], ""), Record(5, ["3", "x"], "")]


def test_separator_comes_from_the_header(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text('a,b\n1,"x;y"\n')
    with open_text(path) as text:
        table = read_table(text, path)
        assert (table.header, table.separator) == (["a", "b"], ",")
        assert list(table.records) == [Record(2, ["1", "x;y"], "")]


def test_wrong_widths_are_reported(tmp_path: Path) -> None:
    found = records(tmp_path, "a;b;c\n1;2\n1;2;3;4\n1;2;3\n")
    assert found == [
        Record(2, None, "2 columns instead of 3"),
        Record(3, None, "4 columns instead of 3"),
        Record(4, ["1", "2", "3"], ""),
    ]


def test_a_quote_left_open_at_the_end_costs_one_line(tmp_path: Path) -> None:
    found = records(tmp_path, 'a;b;c\n1;"open;z\n2;x;y\n3;y;z\n')
    assert found == [
        Record(2, None, "2 columns instead of 3 (a quote left open)"),
        Record(3, ["2", "x", "y"], ""),
        Record(4, ["3", "y", "z"], ""),
    ]


def test_a_quote_left_open_past_the_field_limit_costs_one_line(tmp_path: Path) -> None:
    rows = "".join(f"{n};{'x' * 200}\n" for n in range(1000))  # 200 kB, more than csv's 128 kB per field
    found = records(tmp_path, 'a;b\n-1;"open\n' + rows)
    assert found[0].line == 2 and "unreadable CSV" in found[0].problem
    assert [r.line for r in found[1:]] == list(range(3, 1003))
    assert all(r.values is not None for r in found[1:])


def test_an_empty_file_has_no_header(tmp_path: Path) -> None:
    with pytest.raises(IngestError, match="empty file"):
        records(tmp_path, "")


def test_the_delimiter_is_the_one_that_fits_the_rows(tmp_path: Path) -> None:
    assert records(tmp_path, "a\tb;c\tx\n1\t2;3\t4\n") == [Record(2, ["1", "2;3", "4"], "")]
    assert records(tmp_path, 'a,b\n"1;2",3\n') == [Record(2, ["1;2", "3"], "")]


def test_rows_no_delimiter_fits_stop_the_file_in_one_line(tmp_path: Path) -> None:
    with pytest.raises(IngestError, match=r"t\.csv: no delimiter .* the header's width \(3 columns with ','\)"):
        records(tmp_path, "uai,nom,position\n0940001A,A,48.7, 2.4\n0940002B,B,48.8, 2.5\n")


def test_nul_characters_are_removed_and_their_lines_noted(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text("a;b\n1;x\x00y\n2;z\n3;\x00\n", encoding="utf-8")
    with open_text(path) as text:
        table = read_table(text, path)
        assert [r.values for r in table.records] == [["1", "xy"], ["2", "z"], ["3", ""]]
        assert table.notes() == ["NUL characters removed from 2 line(s): 2, 4"]
