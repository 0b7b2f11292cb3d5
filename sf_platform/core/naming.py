"""S3 key naming: which table a loose landing file belongs to, and what a table prefix's keys mean.

Loose files at the bucket root are named ``<TABLE_NAME>_<YYYYMMDDHHMM>.<ext>``; the table is the whole
prefix before the timestamp, lower-cased (``PSY_ORD_CLASS_202508291511.csv`` -> ``psy_ord_class``).
Inside a table prefix, ``key=value/`` folders are hive partitions.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import unquote

from .identifiers import TABLE_NAME

DEFAULT_LOOSE_FILE_PATTERN = r"^(?P<table>[A-Za-z][A-Za-z0-9]*(?:_[A-Za-z0-9]+)*?)_(?P<ts>\d{12})\.(?P<ext>csv|tsv|txt)(?:\.gz)?$"

# Keys under a table prefix that are not data: Hadoop's "<folder>_$folder$" markers, and files or
# folders whose name starts with "." or "_" (hidden to Hive, Spark and Athena: _SUCCESS,
# _manifest.json, _temporary/, .crc files ...), except "_name=value" partition folders, as in Spark.
_FOLDER_MARKER = re.compile(r"_\$folder\$\Z")

_CONTROL_CHARS = re.compile(r"[\x00-\x1f\x7f]")


@dataclass(frozen=True)
class LooseFileMatch:
    """Where a loose landing object belongs, or why it stays put."""

    key: str
    table: str | None
    reason: str

    @property
    def destination(self) -> str | None:
        return f"{self.table}/{self.key}" if self.table else None


def classify_loose_key(key: str, pattern: str = DEFAULT_LOOSE_FILE_PATTERN) -> LooseFileMatch:
    """Decide the table of a root-level key, or give the reason it does not match (never guess)."""
    if "/" in key:
        return LooseFileMatch(key, None, "not at the bucket root")
    if _CONTROL_CHARS.search(key):
        # A pattern ending in "$" would still match a name with a trailing newline.
        return LooseFileMatch(key, None, "name contains control characters")
    m = re.match(pattern, key)
    if not m:
        return LooseFileMatch(key, None, "name does not match the loose-file pattern")
    table = m.group("table").lower()
    if not TABLE_NAME.match(table):
        return LooseFileMatch(key, None, f"derived table name {table!r} is not a valid table name")
    stamp = m.groupdict().get("ts")
    if stamp and not _is_timestamp(stamp):
        return LooseFileMatch(key, None, f"timestamp {stamp!r} is not a real YYYYMMDDHHMM date and time")
    return LooseFileMatch(key, table, "matched")


def _is_timestamp(stamp: str) -> bool:
    """A pattern's ``ts`` group of 12 digits must be a real minute (202502301200 is not)."""
    if len(stamp) != 12 or not stamp.isascii() or not stamp.isdigit():
        return True  # a custom pattern's own timestamp format: the pattern already decided
    try:
        datetime.strptime(stamp, "%Y%m%d%H%M")
    except ValueError:
        return False
    return True


def table_of_key(key: str) -> str | None:
    """The table prefix of an organized key (``member/x.csv`` -> ``member``), None for root keys."""
    head, sep, _ = key.partition("/")
    return head if sep and TABLE_NAME.match(head) else None


def is_data_key(key: str) -> bool:
    """True for keys that hold table data (not folder markers, hidden or bookkeeping files)."""
    if key.endswith("/") or _FOLDER_MARKER.search(key):
        return False
    return not any(is_hidden_name(part) for part in key.split("/"))


def is_hidden_name(name: str) -> bool:
    """A file or folder name the platform skips: dot files and ``_`` names (``_SUCCESS``, ``_quarantine``),
    except hive partition folders such as ``_dt=2025``."""
    return name.startswith(".") or (name.startswith("_") and "=" not in name)


def partition_values(key: str, table_prefix: str) -> dict[str, str]:
    """Hive partition ``key=value`` folders between the table prefix and the file name, in order."""
    rest = key[len(table_prefix) :].strip("/")
    folders = rest.split("/")[:-1]
    values: dict[str, str] = {}
    for folder in folders:
        if _is_partition_folder(folder):
            name, _, value = folder.partition("=")
            values[name.lower()] = unquote(value)
    return values


def partition_location(key: str, table_prefix: str) -> str:
    """The folder of a file's partition: the key up to its last ``key=value`` folder (with the slash),
    or the table prefix itself for files outside any partition folder."""
    prefix = table_prefix.rstrip("/") + "/"
    folders = key[len(prefix) :].split("/")[:-1]
    last = max((i for i, f in enumerate(folders) if _is_partition_folder(f)), default=-1)
    return prefix + "".join(f"{f}/" for f in folders[: last + 1])


def _is_partition_folder(folder: str) -> bool:
    name, eq, _ = folder.partition("=")
    return bool(eq and name)
