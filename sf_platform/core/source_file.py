"""Reading one source file for loading: its layout, and its rows as typed Arrow batches.

The crawl and curation, the only hops that read landed files, read them through here, so a file's header is mapped to
catalog names one way, rows are decoded strictly one way (a row holding bytes that are not valid in the
file's encoding is a rejected row, never loaded with replacement characters), and rows are validated
against the catalog types one way (``conversion``). Streams are read once, in bounded memory; a row may
be as long as ``SF_MAX_FIELD_BYTES`` in every hop.

A read that fails is one of two things, decided here once for every reader:
- the file's fault (bad gzip, not text, a row over the field limit, S3 refusing the object): a
  ``SourceReadError`` naming the key, with a reason worded by ``unreadable_reason`` (the crawl words a
  truncated or corrupt gzip the same way); curation reports that file and load the others;
- not the file's (the connection reset, a timeout, throttling, a 5xx; ``core/transient.py`` decides): a
  ``TransientReadError``, which curation and the crawl do not catch, so the table's step fails transiently and is
  retried (``assets/hop.py``) instead of the file being quarantined as unreadable until it changes.
"""

from __future__ import annotations

import gzip
import io
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from botocore.exceptions import BotoCoreError, ClientError

from . import transient
from .catalog import source_to_catalog_names
from .conversion import RejectedRow, TargetColumn, type_batch
from .inference import (
    CsvFormat,
    RaggedRow,
    UndecodableRow,
    UnreadableFile,
    detect_layout,
    iter_string_blocks,
)
from .registry import TableConfig

__all__ = [
    "DEFAULT_BLOCK_BYTES",
    "HEAD_BYTES",
    "PrefixedStream",
    "SourceLayout",
    "SourceReadError",
    "TransientReadError",
    "TypedBatch",
    "UnreadableFile",
    "numbered_batches",
    "open_source",
    "ragged_row",
    "read_head",
    "read_layout",
    "read_error",
    "read_source",
    "undecodable_row",
    "unknown_columns",
    "unreadable_reason",
]

HEAD_BYTES = 1 << 20
DEFAULT_BLOCK_BYTES = 1 << 22  # bytes of CSV parsed per block: bounds memory per file being read


@dataclass(frozen=True)
class SourceLayout:
    """How one file is laid out: its format and, per field, the source and catalog column names."""

    format: CsvFormat
    source_names: tuple[str, ...]
    catalog_names: tuple[str, ...]


class SourceReadError(RuntimeError):
    """A source object that could not be read (S3 refused or broke off, bad gzip, not text, a row over
    the field limit): the message names the object's key."""

    def __init__(self, key: str, reason: str):
        super().__init__(f"{key}: cannot be read: {reason}")
        self.key, self.reason = key, reason


class TransientReadError(RuntimeError):
    """A read of a source object that broke off for a reason that is not the file's (the connection,
    throttling, a 5xx). Not a SourceReadError on purpose: readers must not report or quarantine the file;
    the table's step fails and ``core/transient.py`` has it retried."""

    def __init__(self, key: str, reason: str):
        super().__init__(f"{key}: the read broke off (transient, retried): {reason}")
        self.key, self.reason = key, reason


def read_error(key: str, exc: BaseException, rows: int = 0) -> SourceReadError | TransientReadError:
    """The error that reports ``exc``, met while reading ``key`` (after ``rows`` data rows)."""
    if isinstance(exc, (SourceReadError, TransientReadError)):
        return exc
    if transient.classify(exc).transient:
        return TransientReadError(key, _reason(exc))
    return SourceReadError(key, unreadable_reason(exc, rows))


def unreadable_reason(exc: BaseException, rows: int = 0) -> str:
    """Why a file could not be read to its end, in the words every hop uses (the crawl's included)."""
    after = f" after {rows} data rows" if rows else ""
    if isinstance(exc, UnreadableFile):
        return str(exc)
    if isinstance(exc, EOFError):
        return f"gzip data is truncated{after}: {exc}"
    if isinstance(exc, (zlib.error, gzip.BadGzipFile)):
        return f"gzip data is corrupt{after}: {exc}"
    return _reason(exc)


def _reason(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


class _KeyedBody(io.RawIOBase):
    """An S3 object's body whose read errors (botocore's, the connection's) name the object's key, as a
    SourceReadError or, when the connection is to blame, a TransientReadError (``read_error``)."""

    def __init__(self, key: str, body):
        self.key, self._body = key, body

    def readable(self) -> bool:
        return True

    def read(self, size: int | None = -1) -> bytes:
        try:
            return self._body.read() if size is None or size < 0 else self._body.read(size)
        except Exception as exc:
            raise read_error(self.key, exc) from exc

    def readinto(self, buffer) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def close(self) -> None:
        try:
            self._body.close()
        finally:
            super().close()


def open_source(bucket, key: str, **get_args):
    """``key``'s body from the landing bucket (``bucket.open``), read errors naming the key; a GET that
    fails raises SourceReadError naming it too (TransientReadError when throttled, a 5xx, the network:
    ``read_error``). For readers that do not open objects themselves."""
    try:
        body = bucket.open(key, **get_args) if get_args else bucket.open(key)
    except (ClientError, BotoCoreError) as exc:
        raise read_error(key, exc) from exc
    return _KeyedBody(key, body)


def read_source(bucket, key: str) -> bytes:
    """A whole (small) object's bytes; errors name the key."""
    body = open_source(bucket, key)
    try:
        return body.read()
    finally:
        body.close()


class PrefixedStream(io.RawIOBase):
    """A binary stream that replays already-read ``head`` bytes, then continues with ``rest``. Seekable
    back to its start when ``rest`` is (a file read whole into memory), so a file can be read again."""

    def __init__(self, head: bytes, rest):
        self._whole = head
        self._head = memoryview(head)
        self._rest = rest
        self._rest_start = rest.tell() if _seekable(rest) else None

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return self._rest_start is not None

    def tell(self) -> int:
        if self._rest_start is None:
            raise io.UnsupportedOperation("not seekable")
        return len(self._whole) - len(self._head) + self._rest.tell() - self._rest_start

    def seek(self, offset: int, whence: int = 0) -> int:
        if self._rest_start is None or whence != 0 or offset != 0:
            raise io.UnsupportedOperation("only seek(0) of a PrefixedStream over a seekable stream")
        self._head = memoryview(self._whole)
        self._rest.seek(self._rest_start)
        return 0

    def readinto(self, buffer) -> int:
        if self._head:
            n = min(len(buffer), len(self._head))
            buffer[:n] = self._head[:n]
            self._head = self._head[n:]
            return n
        data = self._rest.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


def read_head(stream, size: int = HEAD_BYTES) -> bytes:
    chunks, total = [], 0
    while total < size:
        chunk = stream.read(size - total)
        if not chunk:
            break
        chunks.append(chunk)
        total += len(chunk)
    return b"".join(chunks)


def _seekable(stream) -> bool:
    try:
        return bool(stream.seekable())
    except (AttributeError, ValueError, OSError):
        return False


def read_layout(head: bytes, config: TableConfig, *, key: str = "") -> SourceLayout:
    """The layout of a file from its first bytes and the table's registry settings (its ``encoding``
    wins over the sniffed one). A head that is not text raises UnreadableFile (SourceReadError naming
    ``key`` when given)."""
    try:
        fmt, first_row = detect_layout(head, header=config.header, encoding=config.encoding)
    except UnreadableFile as exc:
        if key:
            raise SourceReadError(key, str(exc)) from exc
        raise
    if fmt.header:
        # Header bytes that are not valid in the encoding show as \xNN escapes, never as U+FFFD.
        source = [name.replace("\ufeff", "").strip() for name in first_row]
    else:
        configured = list(config.columns)
        source = configured + [f"col_{i}" for i in range(len(configured) + 1, len(first_row) + 1)]
    return SourceLayout(fmt, tuple(source), tuple(source_to_catalog_names(source, config)))


@dataclass(frozen=True)
class TypedBatch:
    """One block of a file typed against the catalog: the good rows and the rejected ones (rows that
    cannot be typed and ragged rows)."""

    first_line: int  # data row number of the block's first row (1-based, header excluded)
    rows: int  # data rows the block covers, good and rejected
    good: pa.RecordBatch
    rejected: list[RejectedRow]  # in line order: rows that cannot be typed, ragged and undecodable rows

    def good_lines(self) -> pa.Array:
        """The data row number of each good row, in order."""
        lines = pa.array(np.arange(self.first_line, self.first_line + self.rows, dtype=np.int64))
        if not self.rejected:
            return lines
        bad = pa.array([r.line for r in self.rejected], pa.int64())
        return lines.filter(pc.invert(pc.is_in(lines, bad)))


def numbered_batches(
    stream,
    layout: SourceLayout,
    columns: Sequence[TargetColumn],
    *,
    block_size: int = DEFAULT_BLOCK_BYTES,
    key: str = "",
    max_field: int | None = None,
    reopen=None,
) -> Iterator[TypedBatch]:
    """Typed batches of the table's ``columns`` (in that order), each with its rejected rows and its
    position in the file, so good rows can be numbered: by data row (1-based, the header not counted,
    ragged and undecodable rows counted; see ``inference.StringBlock``).

    Columns the file lacks are null; file columns unknown to the catalog are not returned (the caller
    reports them via ``unknown_columns``). Ragged rows and rows holding bytes that are not valid in the
    file's encoding are rejected rows: nothing is dropped unseen, nothing is replaced.

    ``block_size`` bounds the text parsed at once; a row may be up to ``max_field`` bytes (default
    ``SF_MAX_FIELD_BYTES``) whatever the block size. A file that cannot be read to its end (bad gzip,
    a row over the limit, S3 refusing) raises after the rows before the failure; with ``key`` the error
    is a SourceReadError naming it (``unreadable_reason`` words it), or a TransientReadError when the
    connection is to blame (the read broke off, throttling, a 5xx). ``reopen()`` (a new body of the same object, from its start)
    lets a stream that cannot seek be read again when a quoted value with line breaks is longer than
    two blocks (see ``inference.iter_string_blocks``); a seekable one (read whole) needs none.
    """
    present = set(layout.catalog_names)
    blocks = iter_string_blocks(
        stream, layout.format, list(layout.source_names), block_size=block_size, max_field=max_field, reopen=reopen
    )
    rows = 0
    try:
        for block in blocks:
            renamed = block.batch.rename_columns(list(layout.catalog_names))
            arrays = [
                renamed.column(c.name) if c.name in present else pa.nulls(renamed.num_rows, pa.string())
                for c in columns
            ]
            strings = pa.RecordBatch.from_arrays(arrays, names=[c.name for c in columns])
            if not (block.ragged or block.undecodable):
                good, bad = type_batch(strings, columns, block.first_row)
            else:
                good, bad = type_batch(strings, columns, block.first_row, lines=block.batch_lines())
                bad = bad + [ragged_row(r, len(columns), header=layout.format.header) for r in block.ragged]
                bad += [undecodable_row(r, layout, columns) for r in block.undecodable]
                bad.sort(key=lambda r: r.line)
            rows += block.rows
            yield TypedBatch(block.first_row, block.rows, good, bad)
    except (SourceReadError, TransientReadError):
        raise
    except Exception as exc:
        if not key:
            raise
        raise read_error(key, exc, rows) from exc


def ragged_row(row: RaggedRow, width: int, *, header: bool = True) -> RejectedRow:
    """A ragged row as a rejected row: no values (its fields cannot be matched to columns), its text in
    the reason, which says how its line is counted."""
    uncounted = "the header or blank lines" if header else "blank lines"
    return RejectedRow(
        row.row,
        (None,) * width,
        f"ragged row: expected {row.expected} fields, got {row.actual} "
        f"(data row {row.row}, not counting {uncounted}); raw text: {row.text}",
    )


def undecodable_row(row: UndecodableRow, layout: SourceLayout, columns: Sequence[TargetColumn]) -> RejectedRow:
    """A row holding undecodable bytes as a rejected row: its fields under the target columns, the bad
    bytes as \\xNN escapes; the reason says which bytes, in which field, and what they look like."""
    by_name = dict(zip(layout.catalog_names, row.values, strict=False))
    values = tuple(by_name.get(c.name) for c in columns)
    unknown = [v for name, v in by_name.items() if v is not None and name not in {c.name for c in columns}]
    reason = row.reason + (f"; fields of columns not in the catalog: {unknown}" if unknown else "")
    return RejectedRow(row.row, values, reason)


def unknown_columns(layout: SourceLayout, columns: Sequence[TargetColumn]) -> list[str]:
    known = {c.name for c in columns}
    return [n for n in layout.catalog_names if n not in known]
