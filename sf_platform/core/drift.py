"""Schema drift between two views of one table (files vs catalog, catalog vs MySQL or Snowflake).

Pure comparison and the severity rule; the checks that gather each view live in ``sf_platform.checks``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from . import types as glue_types
from .registry import UpdateBehavior


@dataclass(frozen=True)
class Drift:
    added: tuple[str, ...] = ()  # in the newer/actual view only
    removed: tuple[str, ...] = ()  # in the expected view only
    retyped: tuple[str, ...] = ()  # "column: expected -> actual"

    @property
    def empty(self) -> bool:
        return not (self.added or self.removed or self.retyped)

    def as_metadata(self) -> dict:
        return {"added": list(self.added), "removed": list(self.removed), "retyped": list(self.retyped)}

    def summary(self) -> str:
        """One line a person reads at a glance: "added: phone; retyped: point: int -> bigint"."""
        parts = [f"{what}: {', '.join(names)}" for what, names in
                 (("added", self.added), ("removed", self.removed), ("retyped", self.retyped)) if names]
        return "; ".join(parts) or "no difference"


def compare(
    expected: Mapping[str, str],
    actual: Mapping[str, str],
    compatible: Callable[[str, str], bool] = lambda e, a: e == a,
) -> Drift:
    """Columns (name -> type) of ``actual`` against ``expected``; ``compatible(expected, actual)``."""
    return Drift(
        added=tuple(n for n in actual if n not in expected),
        removed=tuple(n for n in expected if n not in actual),
        retyped=tuple(
            f"{n}: {t} -> {actual[n]}" for n, t in expected.items() if n in actual and not compatible(t, actual[n])
        ),
    )


def files_vs_catalog_severity(drift: Drift, behavior: UpdateBehavior) -> str:
    """'error' when loading now would lose data: files carry columns the catalog will not take."""
    if drift.added and behavior is UpdateBehavior.LOG:
        return "error"
    return "warn" if not drift.empty else "ok"


def mysql_holds(expected_mysql_type: str, actual_column_type: str) -> bool:
    """True when a MySQL column of ``actual_column_type`` holds every value of ``expected_mysql_type``."""
    try:
        return glue_types.mysql_widening(actual_column_type, expected_mysql_type) is None
    except ValueError:
        return False


_SNOWFLAKE_BASE = {"VARCHAR": "TEXT", "STRING": "TEXT", "NUMBER": "NUMBER", "FLOAT": "FLOAT", "DOUBLE": "FLOAT"}


def snowflake_same(expected_type: str, actual_data_type: str) -> bool:
    """Snowflake's INFORMATION_SCHEMA reports base types (TEXT, NUMBER ...); compare on those."""

    def base(t: str) -> str:
        name = t.upper().split("(")[0].strip()
        return _SNOWFLAKE_BASE.get(name, name)

    return base(expected_type) == base(actual_data_type)
