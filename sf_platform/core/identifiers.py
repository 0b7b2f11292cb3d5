"""Identifiers from data: validation, normalization to safe column names, and quoting per SQL dialect.

Header names, S3 keys and table names are user input. The catalog stores normalized names
(lower-case, ``[a-z0-9_]`` plus Unicode letters, at most 64 characters, no reserved words, unique);
every SQL statement quotes them again anyway, through ``quote_mysql`` / ``quote_snowflake`` only.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Sequence

MAX_NAME_CHARS = 64  # MySQL's limit, the tightest of Glue (255), MySQL (64) and Snowflake (255)

# \Z, not $: "$" also matches before a trailing newline, which would let "member\n" through.
TABLE_NAME = re.compile(r"^[a-z][a-z0-9_]{0,63}\Z")

# MySQL identifiers may only hold characters of the Basic Multilingual Plane (no emoji, no CJK
# extension B ...), even in utf8mb4 tables.
_NON_WORD = re.compile(r"(?:[^\w]|[\U00010000-\U0010FFFF])+")

# Reserved words of MySQL 8 / MariaDB and Snowflake that commonly appear as CSV headers. A column named
# like one gets a trailing underscore so unquoted SQL written by people keeps working.
RESERVED = frozenset(
    """
    accessible add all alter analyze and as asc between bigint binary blob both by call cascade case change
    char character check collate column condition connect constraint continue convert create cross current
    current_date current_time current_timestamp current_user cursor database databases date day default
    delete desc describe distinct div double drop else elseif exists exit explain false fetch float for
    force foreign from fulltext grant group having if ignore in index inner insert int integer interval
    into is join key keys kill leading left like limit lines load lock long loop match minus mod natural
    not null number numeric of on option or order out outer partition precision primary procedure range
    read real references regexp release rename repeat replace require restrict return revoke right rlike
    row rows sample schema select set show smallint sql start table terminated then to trailing trigger
    true union unique unlock unsigned update usage use using values varchar when where while with write
    xor year
    """.split()
)


class IdentifierError(ValueError):
    """An identifier that cannot be used safely."""


def validate_table_name(name: str) -> str:
    """A registry table name: lower-case letter first, then ``[a-z0-9_]``, at most 64 characters."""
    if not isinstance(name, str) or not TABLE_NAME.match(name):
        raise IdentifierError(
            f"invalid table name {name!r}: use a lower-case letter followed by a-z, 0-9 or _ (max 64)"
        )
    return name


def normalize_name(raw: str, position: int) -> str:
    """One header name to a safe column name (before de-duplication); ``position`` is 1-based."""
    text = unicodedata.normalize("NFC", str(raw)).strip().lower()
    text = _NON_WORD.sub("_", text).strip("_")
    if not text:
        return f"col_{position}"
    if text[0].isdigit():
        text = f"c_{text}"
    if text in RESERVED:
        text = f"{text}_"
    if len(text) > MAX_NAME_CHARS:
        text = _shorten(text, raw)
    return text


def normalize_names(raw_names: Sequence[str]) -> list[str]:
    """Normalize a header into unique, safe, deterministic column names (same input, same output)."""
    result: list[str] = []
    # Names must also stay distinct in Snowflake, which upper-cases them ("straße" and "strasse" both
    # become "STRASSE").
    seen: set[str] = set()
    for position, raw in enumerate(raw_names, start=1):
        name = normalize_name(raw, position)
        candidate, n = name, 1
        while snowflake_name(candidate) in seen:
            n += 1
            suffix = f"_{n}"
            candidate = name[: MAX_NAME_CHARS - len(suffix)] + suffix
        seen.add(snowflake_name(candidate))
        result.append(candidate)
    return result


def _shorten(text: str, raw: str) -> str:
    digest = hashlib.sha1(str(raw).encode("utf-8")).hexdigest()[:8]
    return f"{text[: MAX_NAME_CHARS - 9].rstrip('_')}_{digest}"


def _check_identifier(name: str, max_chars: int) -> None:
    if not isinstance(name, str) or not name:
        raise IdentifierError(f"empty identifier {name!r}")
    if "\x00" in name:
        raise IdentifierError(f"identifier contains a NUL byte: {name!r}")
    if len(name) > max_chars:
        raise IdentifierError(f"identifier longer than {max_chars} characters: {name!r}")


def quote_mysql(name: str) -> str:
    """Backtick-quote a MySQL identifier (database, table or column)."""
    _check_identifier(name, MAX_NAME_CHARS)
    if name != name.rstrip():
        raise IdentifierError(f"MySQL identifiers cannot end with a space: {name!r}")
    if any(ord(ch) > 0xFFFF for ch in name):
        raise IdentifierError(f"MySQL identifiers cannot hold characters beyond the BMP: {name!r}")
    return "`" + name.replace("`", "``") + "`"


def quote_snowflake(name: str) -> str:
    """Double-quote a Snowflake identifier exactly as given (case preserved)."""
    _check_identifier(name, 255)
    return '"' + name.replace('"', '""') + '"'


def snowflake_name(catalog_name: str) -> str:
    """The Snowflake spelling of a catalog name: upper case, so unquoted SQL by users resolves to it."""
    return catalog_name.upper()
