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


def _streaming_error():
    from botocore.exceptions import ResponseStreamingError

    return ResponseStreamingError(error="Connection broken: IncompleteRead")


class _Bucket:
    """A stand-in for LandingBucket.open: a body that raises ``breaks()`` after ``good`` bytes, or a GET
    refused with ``refuse`` (an S3 error code)."""

    def __init__(self, data: bytes, *, good: int | None = None, refuse: str = "", breaks=_streaming_error):
        self.data, self.good, self.refuse, self.breaks = data, good, refuse, breaks

    def open(self, key: str):
        from botocore.exceptions import ClientError

        if self.refuse:
            raise ClientError({"Error": {"Code": self.refuse, "Message": "m"}}, "GetObject")
        bucket = self

        class Body(io.RawIOBase):
            at = 0

            def readable(self) -> bool:
                return True

            def read(self, size=-1):
                if bucket.good is not None and self.at >= bucket.good:
                    raise bucket.breaks()
                size = len(bucket.data) if size is None or size < 0 else min(size, 1 << 12)
                piece = bucket.data[self.at : self.at + size]
                self.at += len(piece)
                return piece

        return Body()


DATA = b"id,name,score\n" + b"".join(b"%d,n%d,1.00\n" % (i, i) for i in range(20_000))


def _read_all(bucket: _Bucket, key: str, *, keyed: bool = True):
    """Every batch of ``key``, read as the loaders do (through open_source when ``keyed``)."""
    from sf_platform.core.source_file import PrefixedStream, open_source, read_head

    body = open_source(bucket, key) if keyed else bucket.open(key)
    head = read_head(body, 1 << 12)
    layout = read_layout(head, parse_registry({"tables": {"t": {}}}).table("t"))
    return list(numbered_batches(PrefixedStream(head, body), layout, COLUMNS, block_size=1 << 12, key=key))


def test_a_refused_get_is_a_bad_file_named_by_its_key():
    from sf_platform.core.source_file import SourceReadError, open_source, read_source

    for code in ("AccessDenied", "NoSuchKey"):
        with pytest.raises(SourceReadError) as refused:
            open_source(_Bucket(DATA, refuse=code), "t/a.csv")
        assert str(refused.value) == f"t/a.csv: cannot be read: ClientError: An error occurred ({code}) when calling the GetObject operation: m"
        assert refused.value.key == "t/a.csv"
    assert read_source(_Bucket(DATA), "t/a.csv") == DATA


@pytest.mark.parametrize("code", ["SlowDown", "ServiceUnavailable", "InternalError", "503"])
def test_a_throttled_or_failing_get_is_transient_not_a_bad_file(code):
    from sf_platform.core.source_file import SourceReadError, TransientReadError, open_source

    with pytest.raises(TransientReadError) as throttled:
        open_source(_Bucket(DATA, refuse=code), "t/a.csv")
    assert not isinstance(throttled.value, SourceReadError)  # loaders catch that one as a bad file
    assert str(throttled.value) == (
        f"t/a.csv: the read broke off (transient, retried): ClientError: An error occurred ({code}) when "
        "calling the GetObject operation: m"
    )


@pytest.mark.parametrize("keyed", [True, False], ids=["keyed body", "key given to numbered_batches"])
def test_a_read_that_breaks_off_midway_is_transient_and_names_the_object(keyed):
    from sf_platform.core import transient
    from sf_platform.core.source_file import SourceReadError, TransientReadError

    with pytest.raises(TransientReadError) as broken:
        _read_all(_Bucket(DATA, good=1 << 16), "t/b.csv", keyed=keyed)
    assert not isinstance(broken.value, SourceReadError)
    assert broken.value.key == "t/b.csv"
    assert broken.value.reason.startswith("ResponseStreamingError: An error occurred while reading from response stream")
    # As the table step records it, whatever the key says, it is retried.
    text = f"{type(broken.value).__name__}: {broken.value}".replace("t/b.csv", "access_denied/b.csv")
    assert transient.classify_text(text).transient


def test_a_body_failing_its_checksum_midway_is_a_bad_file():
    from botocore.exceptions import FlexibleChecksumError

    from sf_platform.core.source_file import SourceReadError

    def mismatch():
        return FlexibleChecksumError(error_msg="Expected checksum abc= did not match calculated checksum: xyz=")

    with pytest.raises(SourceReadError) as bad:
        _read_all(_Bucket(DATA, good=1 << 16, breaks=mismatch), "t/c.csv")
    assert bad.value.reason == "FlexibleChecksumError: Expected checksum abc= did not match calculated checksum: xyz="


@pytest.mark.parametrize("damage", ["truncated", "corrupt"])
def test_a_bad_gzip_is_worded_the_same_by_the_loaders_and_the_crawl(damage):
    from sf_platform.core.inference import profile_stream
    from sf_platform.core.source_file import SourceReadError

    packed = gzip.compress(DATA)
    if damage == "truncated":
        bad = packed[: len(packed) // 2]
    else:  # bytes flipped in the middle of the deflate stream
        middle = len(packed) // 2
        bad = packed[:middle] + bytes(b ^ 0xFF for b in packed[middle : middle + 64]) + packed[middle + 64 :]
    with pytest.raises(SourceReadError) as loader:
        _read_all(_Bucket(bad), "t/d.csv.gz")
    crawl = profile_stream(io.BytesIO(bad), header="auto").unreadable
    # The same words up to the decoder's own detail (the crawl may see the damage in the file's head,
    # through zlib, before counting rows; the loaders through the gzip module, after some rows).
    assert loader.value.reason.startswith(f"gzip data is {damage} after ")
    assert crawl.startswith(f"gzip data is {damage}")
    assert "EOFError" not in loader.value.reason and "BadGzipFile" not in loader.value.reason


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
