"""CSV inference for the S3 -> Glue crawl: what a Glue crawler does, but right.

Given the raw bytes of one CSV object (plain or gzip; UTF-8, UTF-8 with a BOM or CP949) this module
sniffs the dialect, the encoding and whether the first row is a header -- also when every column is
text, where Glue gives up and loads the header as a data row -- and then profiles every row of the
file in bounded memory with pyarrow's streaming CSV reader and vectorised compute kernels, so each
column's Glue type (bigint, int, double, decimal(p,s), boolean, date, timestamp or string) is decided
from all of its values rather than a sample, with a human-readable reason. Bad input never raises:
empty files, ragged rows and undecodable bytes come back as per-file problems. It also merges the
profiles of the files of one table (`merge_columns`, `widen`) and re-reads a file as all-string
record batches for the loaders, ragged rows kept (`iter_string_blocks`). Pure Python and pyarrow only.
"""

from __future__ import annotations

import codecs
import csv
import gzip
import io
import itertools
import re
import sys
import zlib
from collections import Counter, deque
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass
from functools import reduce
from typing import BinaryIO

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from .read_ahead import read_ahead

__all__ = [
    "GLUE_TYPES",
    "ColumnProfile",
    "CsvFormat",
    "FileProfile",
    "detect_format",
    "failed_profile",
    "RaggedRow",
    "StringBlock",
    "iter_string_blocks",
    "merge_columns",
    "profile_from_dict",
    "profile_stream",
    "profile_to_dict",
    "widen",
]

GLUE_TYPES = ("bigint", "int", "double", "decimal(p,s)", "boolean", "date", "timestamp", "string")


@dataclass(frozen=True)
class CsvFormat:
    delimiter: str  # one of ",", "|", "\t", ";"
    quoted: bool  # any field enclosed in double quotes (the crawler then picks OpenCSVSerde)
    line_terminator: str  # "\n" or "\r\n"
    compression: str  # "none" or "gzip"
    encoding: str  # "utf-8", "utf-8-sig" or "cp949"
    header: bool  # first row is a header


@dataclass(frozen=True)
class ColumnProfile:
    name: str
    type: str  # a Glue type, e.g. "int" or "decimal(12,2)"
    reason: str  # why, e.g. "string: 12 of 40 values have leading zeros (...)"
    non_null: int
    nulls: int  # empty fields
    max_length: int  # longest non-null value in characters


@dataclass(frozen=True)
class FileProfile:
    format: CsvFormat
    header_reason: str
    columns: tuple[ColumnProfile, ...]
    rows: int  # well-formed data rows (header and ragged rows excluded)
    bad_rows: int  # ragged rows (not profiled; the loaders quarantine them, recordCount counts them)
    problems: tuple[str, ...]


_DELIMITERS = ("\t", "|", ";", ",")  # tie-break order: the rarer in ordinary text wins
_GZIP_MAGIC = b"\x1f\x8b"
_SNIFF_ROWS = 500
_PROFILE_BLOCK = 1 << 22  # larger blocks measured slower
_INT32_MIN, _INT32_MAX = -(2**31), 2**31 - 1
_MAX_PRECISION = 38

# One spelling for both engines: Python's re (sniffing) and RE2 (pyarrow). [0-9], not \d, which
# matches any Unicode digit in Python.
_INT = "[+-]?[0-9]+"
_FIXED = r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)"
_FLOAT = _FIXED + "(?:[eE][+-]?[0-9]+)?"
_DATE = "[0-9]{4}-[0-9]{2}-[0-9]{2}"
_TIMESTAMP = _DATE + r"(?:[ T](?:[01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](?:\.[0-9]{1,9})?)?"
_IDENTIFIER = r"[^\W\d][\w .-]*"  # Python re only: a letter (any script) or _, then word characters
_BOOLEANS = pa.array(["true", "false"])
_DIGITS = "0123456789"

_FORCED = {"present": True, "absent": False}


# --------------------------------------------------------------------------- sniffing the head


@dataclass(frozen=True)
class _Sniff:
    format: CsvFormat
    header_reason: str
    first_row: tuple[str, ...]
    width: int  # fields per row
    text: str  # decoded head, to locate ragged rows by line
    problems: tuple[str, ...]


def detect_format(head: bytes, *, header: str = "auto") -> tuple[CsvFormat, str]:
    """From the first bytes of a file (maybe gzip-compressed) -> format + header_reason.

    header is "auto" | "present" | "absent"."""
    sniff = _sniff(head, header, complete=None)
    return sniff.format, sniff.header_reason


def _sniff(head: bytes, header: str, complete: bool | None) -> _Sniff:
    """complete: True when head is the whole file, False when it is cut short, None if unknown."""
    if header not in ("auto", *_FORCED):
        raise ValueError(f'header must be "auto", "present" or "absent", not {header!r}')
    problems: list[str] = []
    compression, data = "none", head
    if head.startswith(_GZIP_MAGIC):
        compression = "gzip"
        limit = max(len(head), 1 << 20)
        data, ended, error = _gunzip_head(head, limit=limit)
        if error:
            problems.append(error)
        elif complete and not ended and len(data) < limit:
            problems.append("gzip data is truncated (the file ends inside the compressed stream)")
        complete = complete and ended
    # Undecodable bytes are reported by the streaming pass, which sees the whole file.
    encoding, text = _decode_head(data, complete)
    delimiter = _choose_delimiter(text)
    rows = _sample_rows(text, delimiter, _SNIFF_ROWS, complete)
    has_header, reason = _decide_header(rows, header)
    fmt = CsvFormat(
        delimiter=delimiter,
        quoted=re.search(f'(?:^|{re.escape(delimiter)})"', text, re.MULTILINE) is not None,
        line_terminator=_line_terminator(text),
        compression=compression,
        encoding=encoding,
        header=has_header,
    )
    first_row = tuple(rows[0]) if rows else ()
    width = len(first_row) if has_header else _modal_width(rows)
    return _Sniff(fmt, reason, first_row, width, text, tuple(problems))


def _gunzip_head(head: bytes, limit: int) -> tuple[bytes, bool, str | None]:
    """Decompress what the head holds of a gzip stream -> (data, whole stream decoded, error)."""
    out: list[bytes] = []
    size, rest = 0, head
    try:
        while rest and size < limit:  # a gzip file may hold several members
            member = zlib.decompressobj(16 + zlib.MAX_WBITS)
            out.append(member.decompress(rest, limit - size))
            size += len(out[-1])
            if not member.eof:
                return b"".join(out), False, None
            rest = member.unused_data
    except zlib.error as exc:
        return b"".join(out), False, f"gzip data is corrupt: {exc}"
    return b"".join(out), not rest, None


def _decode_head(data: bytes, complete: bool | None) -> tuple[str, str]:
    """-> (encoding, text). Korean Windows exports are cp949: not UTF-8, but valid cp949."""
    candidates = ("utf-8-sig",) if data.startswith(codecs.BOM_UTF8) else ("utf-8", "cp949")
    decoded = {enc: _decode(data, enc, final=bool(complete)) for enc in candidates}
    clean = [enc for enc, (_, bad) in decoded.items() if not bad]
    # When nothing decodes cleanly, keep the encoding that needs the fewest replacements.
    encoding = clean[0] if clean else min(candidates, key=lambda enc: decoded[enc][0].count("\ufffd"))
    return encoding, decoded[encoding][0]


def _decode(data: bytes, encoding: str, final: bool) -> tuple[str, bool]:
    """-> (text, whether bytes had to be replaced)."""
    try:
        return codecs.getincrementaldecoder(encoding)("strict").decode(data, final), False
    except UnicodeDecodeError:
        return codecs.getincrementaldecoder(encoding)("replace").decode(data, final), True


def _sample_rows(text: str, delimiter: str, limit: int, complete: bool | None) -> list[list[str]]:
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, quotechar='"', strict=False)
    rows: list[list[str]] = []
    try:
        for row in itertools.islice(reader, limit + 1):
            if row:
                rows.append(row)
    except csv.Error:
        pass
    if complete is not True and 1 < len(rows) <= limit:
        # The head may end mid-row; when unsure, drop the last row only if it looks cut short.
        if complete is False or len(rows[-1]) != len(rows[0]):
            rows.pop()
    return rows[:limit]


def _choose_delimiter(text: str) -> str:
    """The delimiter giving the most consistent field count > 1 over the first rows."""
    best, best_score = ",", None
    for rank, delimiter in enumerate(_DELIMITERS):
        counts = Counter(len(row) for row in _sample_rows(text, delimiter, 100, None))
        if not counts:
            continue
        width, rows = counts.most_common(1)[0]
        score = (rows / counts.total(), width, -rank)
        if width > 1 and (best_score is None or score > best_score):
            best, best_score = delimiter, score
    return best


def _line_terminator(text: str) -> str:
    end = text.find("\n")
    return "\r\n" if end > 0 and text[end - 1] == "\r" else "\n"


def _modal_width(rows: list[list[str]]) -> int:
    return Counter(len(row) for row in rows).most_common(1)[0][0] if rows else 0


# --------------------------------------------------------------------------- header detection


def _value_kind(value: str) -> str:
    """Type of one sample value, for header detection (leading-zero codes count as text)."""
    if re.fullmatch(_INT, value):
        return "string" if re.match("[+-]?0[0-9]", value) else "int"
    if re.fullmatch(_FIXED, value):
        return "string" if re.match("[+-]?0[0-9]", value) else "decimal"
    if re.fullmatch(_FLOAT, value):
        return "double"
    if value.lower() in ("true", "false"):
        return "boolean"
    if re.fullmatch(_TIMESTAMP, value):
        return "date" if len(value) == 10 else "timestamp"
    return "string"


def _sample_type(values: Iterable[str]) -> str:
    return _combine_kinds({_value_kind(v) for v in values if v != ""})


def _combine_kinds(kinds: set[str]) -> str:
    kinds = kinds - {"empty"}
    if not kinds:
        return "empty"
    for order in (("int", "decimal", "double"), ("date", "timestamp")):
        if kinds <= set(order):
            return max(kinds, key=order.index)
    return kinds.pop() if len(kinds) == 1 else "string"


def _decide_header(rows: list[list[str]], header: str) -> tuple[bool, str]:
    if header in _FORCED:
        present = _FORCED[header]
        return present, f"{'header' if present else 'no header'}: {header}, forced by registry"
    if not rows:
        return False, "no header: no rows"
    first, data = rows[0], rows[1:]
    columns = [[row[i] for row in data if i < len(row) and row[i] != ""] for i in range(len(first))]
    types = [_sample_type(values) for values in columns]
    typed = [i for i, t in enumerate(types) if t not in ("string", "empty")]
    if typed:
        clashes = [
            i
            for i in typed
            if first[i] != "" and _combine_kinds({_value_kind(first[i]), types[i]}) != types[i]
        ]
        if clashes:
            i = clashes[0]
            return True, (
                f"header: first-row value {_show(first[i])} is not {types[i]} like the values below it "
                f"({len(clashes)} of {len(typed)} typed columns)"
            )
        i = typed[0]
        return (
            False,
            f"no header: the first row is typed like the data (e.g. {_show(first[i])} is {types[i]})",
        )
    return _decide_text_header(first, columns)


def _decide_text_header(first: list[str], columns: list[list[str]]) -> tuple[bool, str]:
    """Every column is text: a header is a row of unique identifier-like names unlike the data."""
    odd = next((v for v in first if not re.fullmatch(_IDENTIFIER, v.strip())), None)
    if odd is not None:
        return (
            False,
            f"no header: all columns are strings and first-row value {_show(odd)} is not a column name",
        )
    if len(set(first)) < len(first):
        return False, "no header: all columns are strings and the first row repeats a value"
    if not any(columns):
        return True, "header: a single row of unique identifier-like names"
    unlike = [i for i, values in enumerate(columns) if values and _unlike_name(first[i], values)]
    alike = [i for i, values in enumerate(columns) if values and i not in unlike]
    if len(unlike) > len(alike):
        i = unlike[0]
        return True, (
            f"header: all columns are strings, but the first row holds unique identifier-like names "
            f"unlike the data below in {len(unlike)} of {len(first)} columns "
            f"(e.g. {_show(first[i])} over {_show(columns[i][0])})"
        )
    return False, "no header: all columns are strings and the first row looks like the data"


def _unlike_name(name: str, values: list[str]) -> bool:
    """The name never recurs in its column and no value has its shape (case, digits, symbols)."""
    shape = _shape(name)
    return name not in values and all(_shape(v) != shape for v in values)


def _shape(value: str) -> str:
    """'MEMBER_ID' -> 'A_A', 'M0001' -> 'A9', 'Kim' -> 'Aa', '홍길동' -> '가', '학교 코드' -> '가 가'."""
    value = re.sub(r"[^\W\d_A-Za-z]+", "가", value)  # letters of other scripts have no case
    value = re.sub("[A-Z]+", "A", value)
    value = re.sub("[a-z]+", "a", value)
    return re.sub("[0-9]+", "9", value)


def _column_names(sniff: _Sniff, given: Sequence[str] | None) -> list[str]:
    if sniff.format.header:
        names = [v.replace("\ufeff", "").strip() for v in sniff.first_row]
    else:
        names = list(given or [])[: sniff.width]
    names += [""] * (sniff.width - len(names))
    return [name or f"col_{i + 1}" for i, name in enumerate(names)]


# --------------------------------------------------------------------------- streaming the bytes


class _Stream(io.RawIOBase):
    """A read-once stream over byte chunks; read(n) returns n bytes unless at the end, as pyarrow expects."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        super().__init__()
        self._chunks = chunks
        self._chunk = b""
        self._at = 0  # offset in _chunk: slicing off the front would copy the rest on every read

    def readable(self) -> bool:
        return True

    def read(self, size: int | None = -1) -> bytes:
        wanted = sys.maxsize if size is None or size < 0 else size
        pieces = []
        while wanted > 0:
            if self._at >= len(self._chunk):
                chunk = next(self._chunks, None)
                if chunk is None:
                    break
                self._chunk, self._at = chunk, 0
                continue  # the chunk may be empty
            piece = self._chunk[self._at : self._at + wanted]
            self._at += len(piece)
            wanted -= len(piece)
            pieces.append(piece)
        return pieces[0] if len(pieces) == 1 else b"".join(pieces)

    def readinto(self, buffer) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


class _Notes:
    """Problems met while streaming a file; written from the reader thread, read after it ends."""

    def __init__(self, encoding: str, compressed: bool) -> None:
        self.encoding = encoding
        self.compressed = compressed
        self.ragged = 0
        self.first_ragged: tuple[int, int, str] | None = None
        self.bad_offset: int | None = None
        self.replaced = 0

    def on_invalid_row(self, row) -> str:
        self.ragged += 1
        if self.first_ragged is None:
            self.first_ragged = (row.expected_columns, row.actual_columns, row.text or "")
        return "skip"

    def problems(self, head_text: str) -> list[str]:
        found = []
        if self.ragged:
            expected, got, text = self.first_ragged
            line = _line_of(text, head_text)
            where = f"first at line {line}" if line else f"first {_show(text)}"
            found.append(
                f"{_plural(self.ragged, 'ragged row')} ({where}: expected {expected} fields, got {got})"
            )
        if self.bad_offset is not None:
            where = " of the uncompressed data" if self.compressed else ""
            found.append(
                f"undecodable bytes at offset {self.bad_offset}{where} ({self.encoding}); "
                f"{_plural(self.replaced, 'character')} replaced with U+FFFD"
            )
        return found


def _line_of(row_text: str, head_text: str) -> int | None:
    match = re.search(f"(?m)^{re.escape(row_text)}\r?$", head_text) if row_text else None
    return head_text.count("\n", 0, match.start()) + 1 if match else None


def _raw_chunks(head: bytes, stream: BinaryIO | None, size: int) -> Iterator[bytes]:
    yield head
    while stream is not None and (chunk := stream.read(size)):
        yield chunk


def _gunzip(chunks: Iterator[bytes], size: int) -> Iterator[bytes]:
    with gzip.GzipFile(fileobj=_Stream(chunks), mode="rb") as unzipped:
        while chunk := unzipped.read(size):
            yield chunk


def _as_utf8(chunks: Iterator[bytes], notes: _Notes) -> Iterator[bytes]:
    """Valid UTF-8 for pyarrow: ASCII chunks pass untouched, the rest is decoded and re-encoded,
    undecodable bytes becoming U+FFFD (noted), so the reader can skip its own UTF-8 check."""
    decoder = codecs.getincrementaldecoder(notes.encoding)("strict")
    offset = 0
    for chunk in chunks:
        if chunk.isascii() and not decoder.getstate()[0]:
            yield chunk
        else:
            yield _decode_chunk(decoder, chunk, offset, notes, final=False).encode()
        offset += len(chunk)
    yield _decode_chunk(decoder, b"", offset, notes, final=True).encode()


def _decode_chunk(decoder, chunk: bytes, offset: int, notes: _Notes, final: bool) -> str:
    state = decoder.getstate()
    try:
        return decoder.decode(chunk, final)
    except UnicodeDecodeError as exc:
        if notes.bad_offset is None:
            notes.bad_offset = max(0, offset + exc.start - len(state[0]))
    decoder.setstate(state)
    decoder.errors = "replace"
    try:
        text = decoder.decode(chunk, final)
    finally:
        decoder.errors = "strict"
    notes.replaced += text.count("\ufffd")
    return text


def _utf8_source(head: bytes, stream: BinaryIO | None, fmt: CsvFormat, notes: _Notes, size: int) -> _Stream:
    chunks = _raw_chunks(head, stream, size)
    if fmt.compression == "gzip":
        chunks = _gunzip(chunks, size)
    return _Stream(_as_utf8(chunks, notes))


def _string_batches(
    source: _Stream, fmt: CsvFormat, width: int, on_invalid_row, block_size: int, *, use_threads: bool = True
) -> Iterator[pa.RecordBatch]:
    """Record batches of `width` string columns (named f0, f1, ...); empty fields are null. Rows with
    another number of fields go to on_invalid_row (a pyarrow invalid_row_handler), which says "skip"."""
    names = [f"f{i}" for i in range(width)]
    try:
        reader = pacsv.open_csv(
            source,
            read_options=pacsv.ReadOptions(
                column_names=names,
                skip_rows_after_names=int(fmt.header),
                block_size=block_size,
                use_threads=use_threads,
            ),
            parse_options=pacsv.ParseOptions(
                delimiter=fmt.delimiter,
                quote_char='"',
                double_quote=True,
                # Always on: a quoted newline may appear after the sniffed head, and it costs little.
                newlines_in_values=True,
                invalid_row_handler=on_invalid_row,
            ),
            convert_options=pacsv.ConvertOptions(
                column_types=dict.fromkeys(names, pa.string()),
                check_utf8=False,  # _as_utf8 already guarantees it
                null_values=[""],
                strings_can_be_null=True,
                quoted_strings_can_be_null=True,
            ),
        )
    except pa.ArrowInvalid as exc:
        if "Empty CSV file" in str(exc):
            return
        raise
    yield from reader


@dataclass(frozen=True)
class RaggedRow:
    """A row with another number of fields than the file has columns: not parsed, kept as written."""

    row: int  # its data row number (see StringBlock)
    expected: int  # fields
    actual: int
    text: str  # the row as written (decoded), without its line end


@dataclass(frozen=True)
class StringBlock:
    """One parsed block of a file, for the loaders.

    Rows are numbered by data row: 1-based, the header not counted, every row counted, ragged or not;
    blank lines are not rows, and a quoted value spanning lines stays one row (so in a file without
    blank lines or multi-line values, data row n is line n + 1 below a header). A block covers data
    rows first_row .. first_row + rows - 1: the well-formed ones in ``batch`` (in order), the others in
    ``ragged``. Blocks follow one another without gaps."""

    first_row: int
    batch: pa.RecordBatch  # string columns, empty fields null
    ragged: tuple[RaggedRow, ...] = ()

    @property
    def rows(self) -> int:
        return self.batch.num_rows + len(self.ragged)


class _RaggedRows:
    """pyarrow's invalid_row_handler for the loaders: ragged rows kept, numbered by data row. Needs a
    reader without threads: only then does pyarrow number the rows (1-based, the header included)."""

    def __init__(self, header: bool) -> None:
        self.header = int(header)
        self.found: deque[RaggedRow] = deque()  # in file order

    def on_invalid_row(self, row) -> str:
        if row.number is None:
            raise RuntimeError("pyarrow did not number a ragged row (a CSV reader with use_threads=True?)")
        self.found.append(RaggedRow(row.number - self.header, row.expected_columns, row.actual_columns, row.text))
        return "skip"


def iter_string_blocks(
    stream: BinaryIO, fmt: CsvFormat, column_names: Sequence[str], *, block_size: int = 1 << 22
) -> Iterator[StringBlock]:
    """Parse the file with the given format into blocks of all-string columns named column_names (empty
    fields null; the header row skipped when fmt.header), with the ragged rows of each block kept as
    written. Handles gzip, transcodes cp949, strips the BOM; undecodable bytes become U+FFFD."""
    notes = _Notes(fmt.encoding, fmt.compression == "gzip")
    ragged = _RaggedRows(fmt.header)
    source = _utf8_source(b"", stream, fmt, notes, block_size)
    names = list(column_names)
    # Without threads pyarrow numbers the rows it hands to the handler; parsing is no slower for it
    # (measured on a 216 MB file through source_file.numbered_batches, 512 KB and 4 MB blocks).
    batches = _string_batches(source, fmt, len(names), ragged.on_invalid_row, block_size, use_threads=False)
    first = 1
    for batch in batches:
        # A block's rows are all parsed, and its ragged rows reported, before pyarrow returns it; ragged
        # rows after its last good row may wait for the next block.
        end = first + batch.num_rows
        mine = []
        while ragged.found and ragged.found[0].row < end:
            mine.append(ragged.found.popleft())
            end += 1
        if batch.num_rows or mine:
            yield StringBlock(first, pa.RecordBatch.from_arrays(batch.columns, names=names), tuple(mine))
        first = end
    if ragged.found:  # ragged rows after the last good one
        empty = [pa.array([], pa.string())] * len(names)
        yield StringBlock(first, pa.RecordBatch.from_arrays(empty, names=names), tuple(ragged.found))


# --------------------------------------------------------------------------- column statistics


def _all(mask: pa.Array) -> bool:
    """True when every non-null entry is true (also when there are none)."""
    return pc.all(mask, min_count=0).as_py()


def _first_mismatch(values: pa.Array, pattern: str) -> str | None:
    """First value not matching ^pattern$, or None. Tries a small slice first: a column that is not
    of a type usually shows it at once, which saves a regex pass over the whole batch."""
    for part in (values.slice(0, 64), values):
        ok = pc.match_substring_regex(part, f"^(?:{pattern})$")
        if not _all(ok):
            return part.filter(pc.invert(ok))[0].as_py()
    return None


def _min_max(values: pa.Array) -> tuple:
    result = pc.min_max(values)
    return result["min"].as_py(), result["max"].as_py()


class _ColumnStats:
    """Running evidence about one column, updated batch by batch with vectorised kernels.

    Three type families stay alive while every value fits them: numeric (int -> fixed -> float as
    values demand), boolean and temporal (date -> timestamp). The first value that rules a family
    out is kept for the reason. Once all are dead the column costs only its null count and lengths.
    """

    def __init__(self) -> None:
        self.non_null = 0
        self.nulls = 0
        self.max_length = 0
        self.numeric: str | None = "int"
        self.boolean = True
        self.temporal: str | None = "date"
        self.ruled_out: dict[str, str] = {}
        self.leading_zeros = 0
        self.leading_zero_example = ""
        self.int_digits = 0
        self.scale = 0
        self.beyond_int32 = False
        self.beyond_int64 = False
        self.exponent_example = ""
        self.bad_dates = 0
        self.bad_date_example = ""

    def update(self, column: pa.Array) -> None:
        nulls = column.null_count
        self.nulls += nulls
        if nulls == len(column):
            return
        self.non_null += len(column) - nulls
        lengths = pc.binary_length(column)
        shortest, longest = _min_max(lengths)
        if longest > self.max_length:
            longer = column.filter(pc.greater(lengths, self.max_length))
            self.max_length = max(self.max_length, pc.max(pc.utf8_length(longer)).as_py())
        if self.numeric:
            self._check_numeric(column, lengths)
        if self.boolean:
            self._check_boolean(column, lengths, shortest, longest)
        if self.temporal:
            self._check_temporal(column, shortest, longest)

    def _rule_out(self, family: str, example: str) -> None:
        self.ruled_out.setdefault(family, example)
        if family == "numeric":
            self.numeric = None
        elif family == "boolean":
            self.boolean = False
        else:
            self.temporal = None

    # -- numbers

    def _check_numeric(self, column: pa.Array, lengths: pa.Array) -> None:
        if self.numeric == "int":
            if self._check_integers(column, lengths):
                return
            self.numeric = "fixed"
        digits = column
        plain, int_digits, tails = _split_point(column, lengths)
        if not _all(plain):
            odd = column.filter(pc.invert(plain))
            if _first_mismatch(odd, _FIXED) is not None:
                self._check_exponents(column, odd)
                return
            digits = pc.utf8_ltrim(column, characters="+-")  # signed fixed-point values
            _, int_digits, tails = _split_point(digits, pc.binary_length(digits))
        if self.numeric == "fixed":
            self.int_digits = max(self.int_digits, pc.max(int_digits).as_py())
            self.scale = max(self.scale, pc.max(tails).as_py() - 1)  # a tail is ".ddd" or ""
        self._note_leading_zeros(digits, int_digits)

    def _check_integers(self, column: pa.Array, lengths: pa.Array) -> bool:
        unsigned = pc.ascii_is_decimal(column)
        digits = column
        if not _all(unsigned):
            if _first_mismatch(column.filter(pc.invert(unsigned)), _INT) is not None:
                return False
            digits = pc.utf8_ltrim(column, characters="+-")
            lengths = pc.binary_length(digits)
        longest = pc.max(lengths).as_py()
        self.int_digits = max(self.int_digits, longest)
        # Fewer than 10 digits always fit int32 and fewer than 19 int64: cast only when it matters.
        if not self.beyond_int64 and (longest >= 19 or (longest >= 10 and not self.beyond_int32)):
            try:
                low, high = _min_max(pc.cast(pc.utf8_ltrim(column, characters="+"), pa.int64()))
                self.beyond_int32 = self.beyond_int32 or low < _INT32_MIN or high > _INT32_MAX
            except pa.ArrowInvalid:
                self.beyond_int32 = self.beyond_int64 = True
        self._note_leading_zeros(digits, lengths)
        return True

    def _check_exponents(self, column: pa.Array, odd: pa.Array) -> None:
        """Some values are not plain fixed-point: exponents make a double, anything else no number."""
        bad = _first_mismatch(odd, _FLOAT)
        if bad is not None:
            self._rule_out("numeric", bad)
            return
        self.numeric = "float"
        self.exponent_example = self.exponent_example or _first_mismatch(odd, _FIXED) or ""
        digits = pc.utf8_ltrim(column, characters="+-")
        self._note_leading_zeros(digits, None)

    def _note_leading_zeros(self, digits: pa.Array, int_digits: pa.Array | None) -> None:
        """Counts codes like 0012345 (not 0 or 0.5) among unsigned values; int_digits per value, or
        None when exponents are about (0e5 is no code)."""
        zero = pc.starts_with(digits, "0")
        if not pc.any(zero, min_count=0).as_py():
            return
        if int_digits is None:
            padded = pc.match_substring_regex(digits, "^0[0-9]")
        else:
            padded = pc.and_(zero, pc.greater(int_digits, 1))
        count = pc.sum(padded).as_py() or 0
        if count:
            self.leading_zeros += count
            self.leading_zero_example = self.leading_zero_example or digits.filter(padded)[0].as_py()

    # -- booleans and dates

    def _check_boolean(self, column: pa.Array, lengths: pa.Array, shortest: int, longest: int) -> None:
        if shortest < 4 or longest > 5:
            bad = column.filter(pc.or_(pc.less(lengths, 4), pc.greater(lengths, 5)))[0].as_py()
        else:
            # is_in says False for nulls; empty fields are nulls, not evidence against boolean
            ok = pc.or_(pc.is_in(pc.utf8_lower(column), value_set=_BOOLEANS), pc.is_null(column))
            if _all(ok):
                return
            bad = column.filter(pc.invert(ok))[0].as_py()
        self._rule_out("boolean", bad)

    def _check_temporal(self, column: pa.Array, shortest: int, longest: int) -> None:
        if self.temporal == "date" and shortest == longest == 10:
            try:
                pc.cast(column, pa.date32())  # strict YYYY-MM-DD and a real calendar day
                return
            except pa.ArrowInvalid:
                pass
        elif self.temporal == "date":
            self.temporal = "timestamp"
        bad = _first_mismatch(column, _TIMESTAMP)
        if bad is not None:
            self._rule_out("temporal", bad)
            return
        days = pc.utf8_slice_codeunits(column, 0, 10)
        try:
            pc.cast(days, pa.date32())
        except pa.ArrowInvalid:
            self._note_bad_dates(days)

    def _note_bad_dates(self, days: pa.Array) -> None:
        # strptime rolls 2024-02-30 over to 2024-03-01; a day that does not survive the round
        # trip does not exist.
        parsed = pc.strptime(days, format="%Y-%m-%d", unit="s", error_is_null=True)
        ok = pc.fill_null(pc.equal(pc.strftime(parsed, format="%Y-%m-%d"), days), False)
        bad = days.filter(pc.and_(pc.invert(ok), pc.is_valid(days)))
        self.bad_dates += len(bad)
        self.bad_date_example = self.bad_date_example or bad[0].as_py()

    # -- the verdict

    def finish(self, name: str) -> ColumnProfile:
        glue_type, reason = self._decide()
        if self.nulls and self.non_null:
            reason += f" ({self.nulls} empty)"
        return ColumnProfile(name, glue_type, reason, self.non_null, self.nulls, self.max_length)

    def _decide(self) -> tuple[str, str]:
        n = self.non_null
        every = f"all {n} non-null values"
        if n == 0:
            return "string", "string: all values empty"
        if self.numeric and self.leading_zeros:
            return "string", (
                f"string: {self.leading_zeros} of {n} values have leading zeros "
                f"(e.g. {_show(self.leading_zero_example)}), so they are codes, not numbers"
            )
        if self.numeric:
            return self._numeric_type(every)
        if self.boolean:
            return "boolean", f"boolean: {every} are true/false"
        if self.temporal and self.bad_dates:
            return "string", (
                f"string: {self.bad_dates} of {n} values are not real dates (e.g. {_show(self.bad_date_example)})"
            )
        if self.temporal == "date":
            return "date", f"date: {every} are YYYY-MM-DD"
        if self.temporal:
            return "timestamp", f"timestamp: {every} are YYYY-MM-DD HH:MM:SS[.f] timestamps or dates"
        return "string", self._string_reason()

    def _numeric_type(self, every: str) -> tuple[str, str]:
        if self.numeric == "float":
            return (
                "double",
                f"double: {every} are numbers, some with an exponent (e.g. {_show(self.exponent_example)})",
            )
        precision = max(self.int_digits + self.scale, 1)
        if precision > _MAX_PRECISION:
            return (
                "double",
                f"double: {every} are numbers, but they need {precision} digits, over decimal's 38",
            )
        if self.numeric == "fixed":
            return f"decimal({precision},{self.scale})", (
                f"decimal({precision},{self.scale}): {every} are fixed-point numbers with up to "
                f"{_plural(self.int_digits, 'integer digit')} and {_plural(self.scale, 'decimal')}"
            )
        if self.beyond_int64:
            return (
                f"decimal({precision},0)",
                f"decimal({precision},0): {every} are integers, some beyond bigint range",
            )
        if self.beyond_int32:
            return "bigint", f"bigint: {every} are integers, some outside int32 range"
        return "int", f"int: {every} are integers in int32 range"

    def _string_reason(self) -> str:
        what = {"numeric": ["number"], "boolean": ["boolean"], "temporal": ["date", "timestamp"]}
        by_value: dict[str, list[str]] = {}
        for family, value in self.ruled_out.items():
            by_value.setdefault(value, []).extend(what[family])
        return "string: " + "; ".join(
            f"{_show(v)} is not {_or(['a ' + w[0], *w[1:]])}" for v, w in by_value.items()
        )


def _split_point(values: pa.Array, lengths: pa.Array) -> tuple[pa.Array, pa.Array, pa.Array]:
    """For plain fixed-point values (ASCII digits with at most one point; no sign): -> (mask of the
    values that are, integer digits per value, length of the ".ddd" tail per value). Trimming digits
    from both ends must leave "" or "."; cheaper than a regex or a replace."""
    tails = pc.ascii_ltrim(values, characters=_DIGITS)
    middles = pc.ascii_rtrim(tails, characters=_DIGITS)
    middle_lengths = pc.binary_length(middles)
    point_or_nothing = pc.or_(pc.equal(middle_lengths, 0), pc.equal(middles, "."))
    plain = pc.and_(point_or_nothing, pc.greater(lengths, middle_lengths))  # and a digit
    tail_lengths = pc.binary_length(tails)
    return plain, pc.subtract(lengths, tail_lengths), tail_lengths


# --------------------------------------------------------------------------- profiling a file


def profile_stream(
    stream: BinaryIO,
    *,
    header: str = "auto",
    column_names: Sequence[str] | None = None,
    head_bytes: int = 1 << 20,
) -> FileProfile:
    """Profile a whole file from a binary stream (raw bytes as stored, possibly gzip), read once.

    The head is buffered for detection and then parsing continues from it; types are inferred over
    all rows in bounded memory. column_names name the fields of a headerless file (col_N for the
    rest; 1-based). Never raises on bad input: problems are reported in the profile."""
    try:
        head, at_end = _read_head(stream, head_bytes)
    except Exception as exc:  # a failing stream is bad input too
        return _unreadable(header, f"could not read the file: {exc}")
    if not head:
        return _unreadable(header, "empty file")
    sniff = _sniff(head, header, complete=at_end)
    fmt, problems = sniff.format, list(sniff.problems)
    if sniff.width == 0:
        return FileProfile(fmt, sniff.header_reason, (), 0, 0, tuple(problems) or ("empty file (no rows)",))
    names = _column_names(sniff, column_names)
    stats = [_ColumnStats() for _ in names]
    notes = _Notes(fmt.encoding, fmt.compression == "gzip")
    rows, stopped = 0, False
    source = _utf8_source(head, None if at_end else stream, fmt, notes, _PROFILE_BLOCK)
    batches = _string_batches(source, fmt, len(names), notes.on_invalid_row, _PROFILE_BLOCK)
    if not at_end:  # a file that fits in its head is parsed at once: a reader thread costs more than it saves
        batches = read_ahead(batches, name="csv-profile-reader")
    try:
        while True:
            try:
                batch = next(batches, None)
            except Exception as exc:  # the reader is where bad input surfaces
                problems.append(f"reading stopped after {rows} data rows: {exc}")
                stopped = True
                break
            if batch is None:
                break
            rows += batch.num_rows
            for column_stats, column in zip(stats, batch.columns, strict=True):
                column_stats.update(column)
    finally:
        batches.close()
    problems += notes.problems(sniff.text)
    if fmt.header and rows == 0 and not notes.ragged and not stopped:
        problems.append("header only")
    columns = tuple(s.finish(name) for s, name in zip(stats, names, strict=True))
    return FileProfile(fmt, sniff.header_reason, columns, rows, notes.ragged, tuple(problems))


def _read_head(stream: BinaryIO, size: int) -> tuple[bytes, bool]:
    """-> (at least size bytes unless the stream ends first, whether it ended). The head grows (up
    to 64 times) until it shows two lines, so that very wide rows still give a whole first row."""
    parts, have, limit = [], 0, size
    while have < limit:
        chunk = stream.read(limit - have)
        if not chunk:
            return b"".join(parts), True
        parts.append(chunk)
        have += len(chunk)
        if have >= limit and limit < 64 * size and not _shows_two_lines(b"".join(parts)):
            limit += size
    return b"".join(parts), False


def _shows_two_lines(head: bytes) -> bool:
    if head.startswith(_GZIP_MAGIC):
        head = _gunzip_head(head, limit=1 << 20)[0]
    return head.count(b"\n") >= 2


def _unreadable(header: str, problem: str) -> FileProfile:
    fmt, reason = detect_format(b"", header=header)
    return FileProfile(fmt, reason, (), 0, 0, (problem,))


def failed_profile(problem: str, *, header: str = "auto") -> FileProfile:
    """The profile of a file that could not be read at all (no columns, no rows, one problem)."""
    return _unreadable(header, problem)


def profile_to_dict(profile: FileProfile) -> dict:
    """A JSON-ready form of a profile (for caching profiles by ETag)."""
    return asdict(profile)


def profile_from_dict(data: dict) -> FileProfile:
    """The inverse of ``profile_to_dict``; raises (KeyError, TypeError) on a malformed dict."""
    return FileProfile(
        format=CsvFormat(**data["format"]),
        header_reason=data["header_reason"],
        columns=tuple(ColumnProfile(**c) for c in data["columns"]),
        rows=int(data["rows"]),
        bad_rows=int(data["bad_rows"]),
        problems=tuple(data["problems"]),
    )


# --------------------------------------------------------------------------- several files


_DECIMAL_TYPE = re.compile(r"decimal\((\d+),\s*(\d+)\)")
_INTEGER_DIGITS = {"int": 10, "bigint": 19}


def widen(a: str, b: str) -> str:
    """The narrowest Glue type holding both: int < bigint < decimal(p,s) < double, date < timestamp;
    anything else incompatible -> string. Decimals keep enough integer digits and scale for both
    (an int needs 10 integer digits, a bigint 19); past 38 digits that is a double."""
    if a == b:
        return a
    pair = {a, b}
    if pair == {"int", "bigint"}:
        return "bigint"
    if pair == {"date", "timestamp"}:
        return "timestamp"
    if "double" in pair and all(_is_numeric(t) for t in pair):
        return "double"
    da, db = _decimal_digits(a), _decimal_digits(b)
    if da is None or db is None:
        return "string"
    int_digits, scale = max(da[0], db[0]), max(da[1], db[1])
    if int_digits + scale > _MAX_PRECISION:
        return "double"
    return f"decimal({int_digits + scale},{scale})"


def _is_numeric(glue_type: str) -> bool:
    return glue_type == "double" or _decimal_digits(glue_type) is not None


def _decimal_digits(glue_type: str) -> tuple[int, int] | None:
    """(integer digits, scale) of an int, bigint or decimal type."""
    if glue_type in _INTEGER_DIGITS:
        return _INTEGER_DIGITS[glue_type], 0
    match = _DECIMAL_TYPE.fullmatch(glue_type)
    if match is None:
        return None
    precision, scale = int(match[1]), int(match[2])
    return precision - scale, scale


def merge_columns(profiles: Sequence[FileProfile]) -> tuple[ColumnProfile, ...]:
    """Union of the columns of several files of one table, in first-seen order, types widened.

    The k-th column called X in one file matches the k-th called X in another. Rows of files
    without the column count as nulls; all-empty columns do not vote on the type."""
    seen: dict[tuple[str, int], list[tuple[int, ColumnProfile]]] = {}
    for number, profile in enumerate(profiles, start=1):
        occurrences: Counter[str] = Counter()
        for column in profile.columns:
            seen.setdefault((column.name, occurrences[column.name]), []).append((number, column))
            occurrences[column.name] += 1
    merged = []
    for (name, _), found in seen.items():
        columns = [column for _, column in found]
        missing_rows = sum(p.rows for i, p in enumerate(profiles, start=1) if i not in {n for n, _ in found})
        glue_type, reason = _merge_type(found)
        if len(found) < len(profiles):
            reason += f"; missing from {len(profiles) - len(found)} of {len(profiles)} files"
        merged.append(
            ColumnProfile(
                name=name,
                type=glue_type,
                reason=reason,
                non_null=sum(c.non_null for c in columns),
                nulls=sum(c.nulls for c in columns) + missing_rows,
                max_length=max(c.max_length for c in columns),
            )
        )
    return tuple(merged)


def _merge_type(found: list[tuple[int, ColumnProfile]]) -> tuple[str, str]:
    voters = [(number, column) for number, column in found if column.non_null]
    if not voters:
        return "string", "string: all values empty in every file"
    if len(found) == 1:
        return voters[0][1].type, voters[0][1].reason
    glue_type = reduce(widen, (column.type for _, column in voters))
    types = list(dict.fromkeys(column.type for _, column in voters))
    if len(types) == 1:
        number, column = voters[0]
        return (
            glue_type,
            f"{glue_type}: all {len(voters)} files with values agree (file {number}: {_detail(column)})",
        )
    if glue_type != "string":
        return glue_type, f"{glue_type}: widened from {', '.join(types)} across {len(voters)} files"
    text = next(((n, c) for n, c in voters if c.type == "string"), None)
    if text is not None:
        return "string", f"string: file {text[0]} is string ({_detail(text[1])})"
    return "string", f"string: incompatible types across files ({', '.join(types)})"


# --------------------------------------------------------------------------- wording


def _detail(column: ColumnProfile) -> str:
    return column.reason.split(": ", 1)[-1]


def _show(value: str, limit: int = 40) -> str:
    return repr(value if len(value) <= limit else value[: limit - 3] + "...")


def _or(words: list[str]) -> str:
    return words[0] if len(words) == 1 else f"{', '.join(words[:-1])} or {words[-1]}"


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"
