"""Strict decoding and per-file read failures, in memory: bytes are never invented (a row holding bytes
that are not valid in the file's encoding is a rejected row, with its bytes escaped), a file that is not
text or cannot be read to its end is unreadable as a whole (never a partial profile), and a row may be as
long as SF_MAX_FIELD_BYTES whatever the block size."""

from __future__ import annotations

import gzip
import io
import random

import pytest

from sf_platform.core import inference
from sf_platform.core.conversion import TargetColumn
from sf_platform.core.inference import RowTooLong, profile_stream
from sf_platform.core.quarantine import quarantine_csv
from sf_platform.core.registry import RegistryError, parse_registry
from sf_platform.core.source_file import (
    PrefixedStream,
    SourceReadError,
    UnreadableFile,
    numbered_batches,
    read_head,
    read_layout,
)

COLUMNS = [TargetColumn("id", "int"), TargetColumn("name", "string")]


def _config(**settings):
    return parse_registry({"tables": {"t": settings}}).table("t")


def _read(data: bytes, *, block_size: int = 1 << 20, config=None, stream=None, **kwargs):
    config = config or _config()
    layout = read_layout(data[: 1 << 20], config)
    source = stream if stream is not None else io.BytesIO(data)
    return list(numbered_batches(source, layout, COLUMNS, block_size=block_size, **kwargs))


def _good(batches) -> list[tuple[int, dict]]:
    return [
        (line, row)
        for b in batches
        for line, row in zip(b.good_lines().to_pylist(), b.good.to_pylist(), strict=True)
    ]


def _rejected(batches):
    return [r for b in batches for r in b.rejected]


def mixed_file(utf8_rows: int = 2000, cp949_rows: int = 2000) -> bytes:
    """A file whose encoding changes part way: UTF-8 rows, then CP949 rows (every row with Hangul)."""
    head = b"id,name\n"
    first = "".join(f"{i},홍길동{i}\n" for i in range(1, utf8_rows + 1)).encode("utf-8")
    second = "".join(f"{i},김철수{i}\n" for i in range(utf8_rows + 1, utf8_rows + cp949_rows + 1))
    return head + first + second.encode("cp949")


# --------------------------------------------------------------------------- rows, not bytes, are rejected


@pytest.mark.parametrize("block_size", [1 << 10, 1 << 16, 1 << 22])
def test_a_file_whose_encoding_changes_loads_its_good_rows_and_rejects_the_rest(block_size):
    batches = _read(mixed_file(), block_size=block_size)
    good = _good(batches)
    assert [line for line, _ in good] == list(range(1, 2001))
    assert all(row["name"] == f"홍길동{row['id']}" for _, row in good)
    rejected = _rejected(batches)
    assert [r.line for r in rejected] == list(range(2001, 4001))
    first = rejected[0]
    raw = "김철수2001".encode("cp949")
    assert first.values == ("2001", raw.decode("utf-8", "backslashreplace"))
    assert first.reason.startswith("not valid utf-8: bytes \\xb1\\xe8")
    assert "in field 'name'" in first.reason and first.reason.endswith("the row decodes as cp949")
    for b in batches:
        for name in b.good.schema.names:
            assert not any("\ufffd" in (v or "") for v in b.good.column(name).to_pylist() if isinstance(v, str))


def test_the_quarantine_file_holds_the_bytes_escaped_never_a_replacement_character():
    data = b"id,name\n1,ok\n2,caf\xe9 latte\n3,fine\n"
    rejected = _rejected(_read(data))
    assert [(r.line, r.values) for r in rejected] == [(2, ("2", "caf\\xe9 latte"))]
    text = quarantine_csv("t/a.csv", ["id", "name"], rejected).decode("utf-8")
    assert "\ufffd" not in text and "caf\\xe9 latte" in text and "not valid utf-8" in text


def test_an_undecodable_ragged_row_keeps_its_text_escaped():
    data = b"id,name\n1,a\n2,b\xff,extra\n3,c\n"
    rejected = _rejected(_read(data))
    assert [r.line for r in rejected] == [2]
    assert "raw text: 2,b\\xff,extra" in rejected[0].reason


def test_a_cut_multibyte_character_at_the_end_is_rejected_not_dropped():
    data = "id,name\n1,가\n2,나".encode() + b"\xea\xb0"  # the file ends inside a character
    batches = _read(data)
    assert [line for line, _ in _good(batches)] == [1]
    assert [(r.line, r.values[1]) for r in _rejected(batches)] == [(2, "나\\xea\\xb0")]


def test_the_registry_encoding_decodes_what_sniffing_would_reject():
    data = "id,name\n1,café\n2,naïve\n".encode("latin-1")
    assert [r.line for r in _rejected(_read(data))] == [1, 2]  # not UTF-8, and not CP949 either
    batches = _read(data, config=_config(encoding="latin-1"))
    assert [row["name"] for _, row in _good(batches)] == ["café", "naïve"]
    assert _rejected(batches) == []


def test_the_registry_encoding_is_strict_too():
    data = "id,name\n1,홍길동\n".encode("cp949") + b"2,\x80\x80\n"
    batches = _read(data, config=_config(encoding="cp949"))
    assert [row["name"] for _, row in _good(batches)] == ["홍길동"]
    assert [r.reason.split(":")[0] for r in _rejected(batches)] == ["not valid cp949"]


def test_registry_encoding_is_validated_against_python_codecs():
    assert _config(encoding="EUC-KR").encoding == "euc_kr"
    assert _config().encoding == ""
    for bad, words in (("klingon", "unknown encoding"), ("utf-16", "not supported"), ("rot13", "not supported")):
        with pytest.raises(RegistryError, match=words):
            _config(encoding=bad)


def test_data_holding_the_marker_characters_is_set_aside_not_misread():
    data = "id,name\n1,a\U000f0080b\n2,ok\n".encode()
    batches = _read(data)
    assert [row["name"] for _, row in _good(batches)] == ["ok"]
    assert [r.line for r in _rejected(batches)] == [1]


# --------------------------------------------------------------------------- the crawl's view


def test_the_profile_reports_where_the_encoding_changes_and_counts_every_row():
    profile = profile_stream(io.BytesIO(mixed_file()), head_bytes=1 << 12)
    assert (profile.rows, profile.undecodable_rows, profile.records) == (2000, 2000, 4000)
    assert profile.format.encoding == "utf-8"
    problem = next(p for p in profile.problems if "not valid" in p)
    assert problem.startswith("line 2002: bytes not valid utf-8; looks like cp949 from there")
    assert {c.name: c.type for c in profile.columns} == {"id": "int", "name": "string"}


def test_the_profile_of_a_mixed_file_read_in_one_head_picks_the_first_encoding():
    profile = profile_stream(io.BytesIO(mixed_file()))  # the whole file is in the head
    assert profile.format.encoding == "utf-8"
    assert (profile.rows, profile.undecodable_rows) == (2000, 2000)


def test_random_binary_is_not_text():
    data = random.Random(7).randbytes(50_000)
    profile = profile_stream(io.BytesIO(data))
    assert profile.unreadable.startswith("not a text file: its first 50,000 bytes hold")
    assert (profile.columns, profile.rows, profile.records) == ((), 0, 0)
    with pytest.raises(UnreadableFile, match="not a text file"):
        read_layout(data[: 1 << 20], _config())
    with pytest.raises(SourceReadError, match="^t/x.csv: cannot be read: not a text file"):
        read_layout(data[: 1 << 20], _config(), key="t/x.csv")


def test_a_truncated_gzip_is_unreadable_never_a_short_count():
    body = b"id,name\n" + b"".join(b"%d,n%d\n" % (i, i) for i in range(100_000))
    data = gzip.compress(body)
    cut = data[: len(data) // 2]
    for head_bytes in (1 << 10, 1 << 20):  # streamed, and whole in the head
        profile = profile_stream(io.BytesIO(cut), head_bytes=head_bytes)
        assert (profile.columns, profile.rows) == ((), 0), profile.problems
        assert profile.unreadable.startswith("gzip data is truncated"), profile.unreadable
        assert "Compressed file ended" in profile.unreadable
    with pytest.raises(SourceReadError, match=r"^t/a.csv.gz: cannot be read: gzip data is truncated( after \d+ data rows)?: Compressed file ended"):
        _read(cut, key="t/a.csv.gz")


def test_a_read_that_breaks_midway_is_unreadable_and_worth_another_read():
    class Breaks(io.RawIOBase):
        def __init__(self, data: bytes) -> None:
            self.data, self.at = data, 0

        def readable(self) -> bool:
            return True

        def read(self, size=-1) -> bytes:
            if self.at > len(self.data) // 2:
                raise OSError("checksum mismatch")
            piece = self.data[self.at : self.at + (size if size and size > 0 else 1 << 16)]
            self.at += len(piece)
            return piece

    data = b"id,name\n" + b"".join(b"%d,n%d\n" % (i, i) for i in range(300_000))
    profile = profile_stream(Breaks(data), head_bytes=1 << 16)
    assert (profile.columns, profile.rows) == ((), 0)
    assert profile.unreadable == "OSError: checksum mismatch" and profile.read_failed


# --------------------------------------------------------------------------- long fields


def _field_file(size: int, *, quoted: bool = False, newlines: bool = False) -> bytes:
    value = ("x" * 99 + ("\n" if newlines else "y")) * (size // 100)
    field = f'"{value}"' if quoted or newlines else value
    return f"id,name\n1,short\n2,{field}\n3,after\n".encode()


@pytest.mark.parametrize("quoted,newlines", [(False, False), (True, False), (True, True)])
def test_a_field_longer_than_the_block_loads(quoted, newlines):
    data = _field_file(1 << 20, quoted=quoted, newlines=newlines)
    for stream in (io.BytesIO(data), None):
        if stream is None:  # a stream that cannot seek: replayed head + the rest, as the loaders pass it
            body = io.BufferedReader(io.BytesIO(data))
            head = read_head(body)
            stream = PrefixedStream(head, _Unseekable(body))
            if newlines:
                with pytest.raises(RowTooLong, match="cannot be read again"):
                    _read(data, block_size=1 << 18, stream=stream)
                continue
        batches = _read(data, block_size=1 << 18, stream=stream)
        rows = {line: row for line, row in _good(batches)}
        assert sorted(rows) == [1, 2, 3] and len(rows[2]["name"]) == (1 << 20) // 100 * 100
        assert _rejected(batches) == []


class _Unseekable(io.RawIOBase):
    def __init__(self, inner) -> None:
        self.inner = inner

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        data = self.inner.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


def test_the_profile_reads_a_long_field_and_counts_every_row():
    profile = profile_stream(io.BytesIO(_field_file(10 << 20)), head_bytes=1 << 16)
    assert (profile.rows, profile.problems) == (3, ())
    assert next(c for c in profile.columns if c.name == "name").max_length == (10 << 20) // 100 * 100


def test_a_row_over_the_limit_makes_the_file_unreadable_naming_line_and_limit(monkeypatch):
    data = _field_file(1 << 20)
    monkeypatch.setenv("SF_MAX_FIELD_BYTES", str(1 << 19))
    assert inference.max_field_bytes() == 1 << 19
    profile = profile_stream(io.BytesIO(data), head_bytes=1 << 16)
    assert profile.unreadable == (
        "line 3 (data row 2) is longer than SF_MAX_FIELD_BYTES (524,288 bytes): the file is not read"
    )
    assert (profile.columns, profile.rows) == ((), 0)
    with pytest.raises(SourceReadError) as raised:
        _read(data, block_size=1 << 16, key="t/long.csv")
    assert str(raised.value) == (
        "t/long.csv: cannot be read: line 3 (data row 2) is longer than SF_MAX_FIELD_BYTES "
        "(524,288 bytes): the file is not read"
    )


def test_the_field_limit_setting_is_checked(monkeypatch):
    monkeypatch.delenv("SF_MAX_FIELD_BYTES", raising=False)
    assert inference.max_field_bytes() == 64 << 20
    for bad in ("lots", "100"):
        monkeypatch.setenv("SF_MAX_FIELD_BYTES", bad)
        with pytest.raises(ValueError, match="SF_MAX_FIELD_BYTES"):
            inference.max_field_bytes()
    assert "SF_MAX_FIELD_BYTES" in __import__("sf_platform.settings", fromlist=["VARIABLES"]).VARIABLES


def test_lines_ending_in_cr_only_still_parse_in_small_blocks():
    data = b"id,name\r" + b"".join(b"%d,n%d\r" % (i, i) for i in range(1, 3001))
    batches = _read(data, block_size=1 << 10)
    assert [line for line, _ in _good(batches)] == list(range(1, 3001))


def test_a_stream_that_cannot_seek_is_read_again_through_reopen():
    data = _field_file(1 << 20, newlines=True)

    def unseekable():
        return _Unseekable(io.BufferedReader(io.BytesIO(data)))

    body = unseekable()
    head = read_head(body)
    batches = _read(data, block_size=1 << 18, stream=PrefixedStream(head, body), reopen=unseekable)
    assert [line for line, _ in _good(batches)] == [1, 2, 3] and _rejected(batches) == []
