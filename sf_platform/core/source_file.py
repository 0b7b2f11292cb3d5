"""Reading one source file for loading: its layout, and its rows as typed Arrow batches.

Both mirrors (MySQL, Snowflake) read files through here, so a file's header is mapped to catalog
names one way, and rows are validated against the catalog types one way (``conversion``). Streams are
read once, in bounded memory.
"""

from __future__ import annotations

import csv
import io
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .catalog import source_to_catalog_names
from .conversion import RejectedRow, TargetColumn, type_batch
from .inference import CsvFormat, RaggedRow, StringBlock, detect_format, iter_string_blocks
from .registry import TableConfig

HEAD_BYTES = 1 << 20
DEFAULT_BLOCK_BYTES = 1 << 22  # bytes of CSV parsed per block: bounds memory per file being read


@dataclass(frozen=True)
class SourceLayout:
    """How one file is laid out: its format and, per field, the source and catalog column names."""

    format: CsvFormat
    source_names: tuple[str, ...]
    catalog_names: tuple[str, ...]


class PrefixedStream(io.RawIOBase):
    """A binary stream that replays already-read ``head`` bytes, then continues with ``rest``."""

    def __init__(self, head: bytes, rest):
        self._head = memoryview(head)
        self._rest = rest

    def readable(self) -> bool:
        return True

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


def read_layout(head: bytes, config: TableConfig) -> SourceLayout:
    """The layout of a file from its first bytes and the table's registry settings."""
    fmt, _ = detect_format(head, header=config.header)
    first_row = _first_row(head, fmt)
    if fmt.header:
        source = [name.strip() for name in first_row]
    else:
        configured = list(config.columns)
        source = configured + [f"col_{i}" for i in range(len(configured) + 1, len(first_row) + 1)]
    return SourceLayout(fmt, tuple(source), tuple(source_to_catalog_names(source, config)))


def _first_row(head: bytes, fmt: CsvFormat) -> list[str]:
    if fmt.compression == "gzip":
        head = zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(head)
    text = head.decode(fmt.encoding, errors="replace")
    return next(csv.reader(io.StringIO(text), delimiter=fmt.delimiter), [])


@dataclass(frozen=True)
class TypedBatch:
    """One block of a file typed against the catalog: the good rows and the rejected ones (rows that
    cannot be typed and ragged rows)."""

    first_line: int  # data row number of the block's first row (1-based, header excluded)
    rows: int  # data rows the block covers, good and rejected
    good: pa.RecordBatch
    rejected: list[RejectedRow]  # in line order

    def good_lines(self) -> pa.Array:
        """The data row number of each good row, in order."""
        lines = pa.array(np.arange(self.first_line, self.first_line + self.rows, dtype=np.int64))
        if not self.rejected:
            return lines
        bad = pa.array([r.line for r in self.rejected], pa.int64())
        return lines.filter(pc.invert(pc.is_in(lines, bad)))


def numbered_batches(
    stream, layout: SourceLayout, columns: Sequence[TargetColumn], *, block_size: int = DEFAULT_BLOCK_BYTES
) -> Iterator[TypedBatch]:
    """Typed batches of the table's ``columns`` (in that order), each with its rejected rows and its
    position in the file, so good rows can be numbered: by data row (1-based, the header not counted,
    ragged rows counted; see ``inference.StringBlock``).

    Columns the file lacks are null; file columns unknown to the catalog are not returned (the caller
    reports them via ``unknown_columns``). Ragged rows are rejected rows: nothing is dropped unseen.
    """
    present = set(layout.catalog_names)
    for block in iter_string_blocks(stream, layout.format, list(layout.source_names), block_size=block_size):
        renamed = block.batch.rename_columns(list(layout.catalog_names))
        arrays = [
            renamed.column(c.name) if c.name in present else pa.nulls(renamed.num_rows, pa.string())
            for c in columns
        ]
        strings = pa.RecordBatch.from_arrays(arrays, names=[c.name for c in columns])
        if not block.ragged:
            good, bad = type_batch(strings, columns, block.first_row)
        else:
            good, bad = type_batch(strings, columns, block.first_row, lines=_parsed_lines(block))
            ragged = [ragged_row(r, len(columns), header=layout.format.header) for r in block.ragged]
            bad = sorted(bad + ragged, key=lambda r: r.line)
        yield TypedBatch(block.first_row, block.rows, good, bad)


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


def _parsed_lines(block: StringBlock) -> np.ndarray:
    """The data row number of each row of ``block.batch``: the block's rows but the ragged ones."""
    lines = np.arange(block.first_row, block.first_row + block.rows, dtype=np.int64)
    return lines[~np.isin(lines, [r.row for r in block.ragged])]


def unknown_columns(layout: SourceLayout, columns: Sequence[TargetColumn]) -> list[str]:
    known = {c.name for c in columns}
    return [n for n in layout.catalog_names if n not in known]
