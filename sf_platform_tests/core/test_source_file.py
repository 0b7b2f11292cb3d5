"""Tests for sf_platform.core.source_file: how the loaders read a file -- typed batches, data row numbers,
and rejected rows (values that cannot be typed, and ragged rows), on small in-memory files."""

from __future__ import annotations

import csv
import gzip
import io
from decimal import Decimal

import pytest

from sf_platform.core.conversion import TargetColumn
from sf_platform.core.quarantine import quarantine_csv
from sf_platform.core.registry import parse_registry
from sf_platform.core.source_file import numbered_batches, read_layout

COLUMNS = [TargetColumn("id", "int"), TargetColumn("name", "string"), TargetColumn("score", "decimal(5,2)")]


def _read(data: bytes, *, block_size: int = 1 << 20, **settings):
    config = parse_registry({"tables": {"t": settings}}).table("t")
    layout = read_layout(data[: 1 << 20], config)
    return list(numbered_batches(io.BytesIO(data), layout, COLUMNS, block_size=block_size))


def _good(batches) -> list[tuple[int, dict]]:
    """(data row number, row) of every good row."""
    return [
        (line, row)
        for b in batches
        for line, row in zip(b.good_lines().to_pylist(), b.good.to_pylist(), strict=True)
    ]


def _rejected(batches):
    return [r for b in batches for r in b.rejected]


def test_a_well_formed_file_is_numbered_1_to_n():
    data = b"id,name,score\n" + b"".join(b"%d,n%d,1.50\n" % (i, i) for i in range(1, 2001))
    batches = _read(data, block_size=1 << 12)
    assert len(batches) > 3
    assert [line for line, _ in _good(batches)] == list(range(1, 2001))
    assert [row["id"] for _, row in _good(batches)] == list(range(1, 2001))
    assert _rejected(batches) == []


def test_ragged_rows_are_rejected_with_reason_and_text_and_the_good_rows_load():
    data = (
        b"id,name,score\n"
        b"1,Kim,1.50\n"
        b"2,Lee\n"  # too few fields
        b"3,Park,x\n"  # cannot be typed
        b"4,Choi,4.00,extra\n"  # too many fields
        b"5,Jung,5.25\n"
    )
    for block_size in (16, 1 << 20):
        batches = _read(data, block_size=block_size)
        assert _good(batches) == [
            (1, {"id": 1, "name": "Kim", "score": Decimal("1.50")}),
            (5, {"id": 5, "name": "Jung", "score": Decimal("5.25")}),
        ]
        rejected = _rejected(batches)
        assert [(r.line, r.values) for r in rejected] == [
            (2, (None, None, None)),
            (3, ("3", "Park", "x")),
            (4, (None, None, None)),
        ]
        assert rejected[0].reason == (
            "ragged row: expected 3 fields, got 2 (data row 2, not counting the header or blank lines); "
            "raw text: 2,Lee"
        )
        assert rejected[1].reason.startswith("column 'score': value 'x' is not a valid decimal(5,2)")
        assert rejected[2].reason.startswith("ragged row: expected 3 fields, got 4 (data row 4,")
        assert rejected[2].reason.endswith("; raw text: 4,Choi,4.00,extra")
        # Every data row is either good or rejected, exactly once.
        assert sum(b.rows for b in batches) == 5


def test_good_rows_keep_their_number_whatever_the_block_size_and_nothing_is_counted_twice():
    lines = [b"%d,n%d,%d.00" % (i, i, i % 100) if i % 97 else b"%d,broken" % i for i in range(1, 3001)]
    data = b"id,name,score\n" + b"\n".join(lines) + b"\n"
    small, large = _read(data, block_size=1 << 11), _read(data, block_size=1 << 22)
    assert len(small) > 10
    assert _good(small) == _good(large)
    good_lines = [line for line, _ in _good(small)]
    rejected_lines = [r.line for r in _rejected(small)]
    assert rejected_lines == list(range(97, 3001, 97))
    assert sorted(good_lines + rejected_lines) == list(range(1, 3001))
    # A good row's number is its place among the data rows: row "n" is data row n.
    assert all(row["id"] == line for line, row in _good(small))


def test_ragged_rows_in_gzip_cp949_and_a_trailing_ragged_row():
    text = "id,name,score\r\n1,홍길동,1.00\r\n\r\n2,김철수\r\n3,\"이영희\r\n박\",3.00\r\n4\r\n"
    data = gzip.compress(text.encode("cp949"))
    batches = _read(data)
    assert [(line, row["name"]) for line, row in _good(batches)] == [(1, "홍길동"), (3, "이영희\r\n박")]
    assert [(r.line, r.reason.split("raw text: ")[1]) for r in _rejected(batches)] == [(2, "2,김철수"), (4, "4")]


def test_a_ragged_row_in_the_quarantine_file_keeps_its_text():
    data = b'id,name,score\n1,"a, b"\n2,c,2.00\n'
    (batch,) = _read(data)
    rows = list(csv.reader(io.StringIO(quarantine_csv("t/f.csv", ["id", "name", "score"], batch.rejected).decode())))
    assert rows[0] == ["source_key", "line", "reason", "id", "name", "score"]
    (row,) = rows[1:]
    assert row[:2] == ["t/f.csv", "1"]
    assert row[2].endswith('raw text: 1,"a, b"')
    assert row[3:] == ["", "", ""]


def test_without_a_header_the_reason_counts_only_blank_lines():
    data = b"1,a,1.00\n\n2,b\n"
    batches = _read(data, header="absent", columns=["id", "name", "score"])
    (row,) = _rejected(batches)
    assert row.line == 2
    assert row.reason == "ragged row: expected 3 fields, got 2 (data row 2, not counting blank lines); raw text: 2,b"


# --------------------------------------------------------------------------- errors name the object


class _Bucket:
    """A stand-in for LandingBucket.open: a body that breaks after ``good`` bytes, or a refused GET."""

    def __init__(self, data: bytes, *, good: int | None = None, refuse: bool = False):
        self.data, self.good, self.refuse = data, good, refuse

    def open(self, key: str):
        from botocore.exceptions import ClientError

        if self.refuse:
            raise ClientError({"Error": {"Code": "AccessDenied", "Message": "Access Denied"}}, "GetObject")
        bucket = self

        class Body(io.RawIOBase):
            at = 0

            def readable(self) -> bool:
                return True

            def read(self, size=-1):
                if bucket.good is not None and self.at >= bucket.good:
                    from botocore.exceptions import ResponseStreamingError

                    raise ResponseStreamingError(error="Connection broken: IncompleteRead")
                size = len(bucket.data) if size is None or size < 0 else min(size, 1 << 12)
                piece = bucket.data[self.at : self.at + size]
                self.at += len(piece)
                return piece

        return Body()


def test_read_errors_from_s3_name_the_object():
    from sf_platform.core.source_file import (
        PrefixedStream,
        SourceReadError,
        open_source,
        read_head,
        read_source,
    )

    data = b"id,name,score\n" + b"".join(b"%d,n%d,1.00\n" % (i, i) for i in range(20_000))
    with pytest.raises(SourceReadError) as refused:
        open_source(_Bucket(data, refuse=True), "t/a.csv")
    assert str(refused.value).startswith("t/a.csv: cannot be read: ClientError: An error occurred (AccessDenied)")
    assert read_source(_Bucket(data), "t/a.csv") == data

    body = open_source(_Bucket(data, good=1 << 16), "t/b.csv")
    head = read_head(body, 1 << 12)
    layout = read_layout(head, parse_registry({"tables": {"t": {}}}).table("t"))
    with pytest.raises(SourceReadError) as broken:
        list(numbered_batches(PrefixedStream(head, body), layout, COLUMNS, block_size=1 << 12))
    assert str(broken.value).startswith("t/b.csv: cannot be read: ResponseStreamingError")
    # Without a keyed body, the key given to numbered_batches names the object all the same.
    body = _Bucket(data, good=1 << 16).open("t/c.csv")
    with pytest.raises(SourceReadError, match="^t/c.csv: cannot be read: ResponseStreamingError"):
        list(numbered_batches(PrefixedStream(read_head(body, 1 << 12), body), layout, COLUMNS, key="t/c.csv"))


def test_undecodable_rows_are_rejected_rows_beside_the_typing_ones():
    data = b"id,name,score\n1,Kim,1.50\n2,L\xeee,2.00\n3,Park,x\n4,Choi,4.00\n"
    batches = _read(data)
    assert [line for line, _ in _good(batches)] == [1, 4]
    rejected = _rejected(batches)
    assert [(r.line, r.values) for r in rejected] == [(2, ("2", "L\\xeee", "2.00")), (3, ("3", "Park", "x"))]
    assert rejected[0].reason == "not valid utf-8: bytes \\xee in field 'name'"


def test_a_header_with_undecodable_bytes_shows_them_escaped():
    data = b"id,na\xffme,score\n1,a,1.00\n"
    config = parse_registry({"tables": {"t": {}}}).table("t")
    layout = read_layout(data, config)
    assert layout.source_names == ("id", "na\\xffme", "score")
    assert all("\ufffd" not in n for n in layout.catalog_names)
