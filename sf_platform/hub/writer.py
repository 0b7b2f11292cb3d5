"""The hub table's lifecycle and its commits: create (or migrate a Hive-style curated table), follow the
catalog's schema, and commit a set of removed and added data files in ONE snapshot.

- Create: one transaction makes the table with the catalog's columns, the bookkeeping columns and an
  identity partition per hive partition key, at ``s3://<landing bucket>/_curated/<table>``.
- Migrate: a curated Glue entry that is not an Iceberg table (the Hive-style Parquet layer before issue
  14) is deleted with its Parquet files and its JSON ledger; the Iceberg table replaces it and the first
  run curates every object.
- Schema: ``core.columnar.plan_evolution`` says what changed; new columns are added where the catalog has
  them, int -> long, float -> double and decimal precision are widened in place. Anything else cannot be
  done in place: with ``update_behavior: UPDATE_IN_DATABASE`` (the default) the table is rebuilt
  (dropped and created again, every object curated in a ``rebuild`` commit; targets see a snapshot they
  do not know and reload in full), otherwise the run fails naming the columns.
- Commit: ``commit.retry.num-retries`` is 0 on our tables. pyiceberg's own retry would re-apply our
  snapshot on a newer head with the ledger computed from the older one (two concurrent runs would both
  add the same object); instead a conflict fails the commit and the caller plans again from the new head.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING

import pyarrow as pa

from sf_platform.core import columnar
from sf_platform.core.catalog import CatalogColumn
from sf_platform.hub.catalog import Hub, HubError
from sf_platform.hub.conventions import BOOKKEEPING, SOURCE_KEY, arrow_schema, table_prefix

if TYPE_CHECKING:
    from pyiceberg.manifest import DataFile
    from pyiceberg.table import Table

TABLE_PROPERTIES = {
    "commit.retry.num-retries": "0",  # see the module docstring: we plan again on a conflict
    "write.metadata.delete-after-commit.enabled": "true",
    "write.metadata.previous-versions-max": "20",
    "write.parquet.compression-codec": "zstd",
    # Full bounds of the source key (default: truncated to 16 characters): a replaced object's files are
    # found by the key's min/max statistics instead of reading every file.
    f"write.metadata.metrics.column.{SOURCE_KEY}": "full",
}
OLD_LEDGER_ROOT = "_sf/curated"  # the Hive-style layer's JSON ledger (migration removes it)


class SchemaChangeError(HubError):
    """The catalog's columns changed in a way the hub table cannot follow in place."""


def conflict_errors() -> tuple[type[Exception], ...]:
    """The exceptions a commit raises when another writer committed first (nothing of ours landed)."""
    from pyiceberg.exceptions import CommitFailedException, ValidationException

    return (CommitFailedException, ValidationException)


# ------------------------------------------------------------------------------------------ table


def open_table(hub: Hub, table: str, columns: Sequence[CatalogColumn], partition_keys: Sequence[str]) -> tuple[Table, str]:
    """The hub table, created (or migrated from a Hive-style entry) when needed; -> (table, action):
    ``created`` | ``migrated`` | ``existing``."""
    action = "existing"
    entry = hub.glue.get_table(table, hub.database)
    if entry is not None and (entry.get("Parameters") or {}).get("table_type", "").upper() != "ICEBERG":
        _remove_hive_layer(hub, table)
        action = "migrated"
    found = hub.load(table)
    if found is not None:
        return found, action
    return _create(hub, table, columns, partition_keys), "created" if action == "existing" else action


def _create(hub: Hub, table: str, columns: Sequence[CatalogColumn], partition_keys: Sequence[str]) -> Table:
    from pyiceberg.exceptions import CommitFailedException, TableAlreadyExistsError

    hub.glue.ensure_database(hub.database)
    try:
        tx = hub.catalog().create_table_transaction(
            hub.identifier(table), schema=arrow_schema(columns), location=hub.location(table),
            properties=TABLE_PROPERTIES,
        )
        if partition_keys:
            with tx.update_spec() as spec:
                for key in partition_keys:
                    spec.add_identity(key)
        tx.commit_transaction()
    except TableAlreadyExistsError:
        pass  # another run created it first
    except CommitFailedException:
        # pyiceberg 0.12's Glue catalog reports a create that lost the race to another run's create as
        # CommitFailedException("Table already exists") (seen in the two-process test): use theirs.
        found = hub.load(table)
        if found is None:
            raise
        return found
    return hub.require(table)


def _remove_hive_layer(hub: Hub, table: str) -> None:
    """Delete a Hive-style curated table: its Glue entry, its Parquet files, its JSON ledger."""
    hub.glue.delete_table(table, hub.database)
    keys = [o["Key"] for o in hub.landing.list_objects(table_prefix(table))]
    keys += [o["Key"] for o in hub.landing.list_objects(f"{OLD_LEDGER_ROOT}/{table}/")]
    delete_keys(hub.landing, keys)


def drop(hub: Hub, table: str) -> None:
    """Drop the hub table's catalog entry (its files become orphans of the next table at the location)."""
    hub.catalog().drop_table(hub.identifier(table))


def delete_keys(bucket, keys: Iterable[str]) -> None:
    keys = sorted(keys)
    for i in range(0, len(keys), 1000):
        chunk = [{"Key": k} for k in keys[i : i + 1000]]
        answer = bucket.client().delete_objects(Bucket=bucket.bucket, Delete={"Objects": chunk, "Quiet": True})
        if answer.get("Errors"):
            error = answer["Errors"][0]
            raise HubError(f"could not delete {error.get('Key')}: {error.get('Message')}")


# ------------------------------------------------------------------------------------------ schema


def evolve(table: Table, columns: Sequence[CatalogColumn]) -> tuple[Table, list[str]]:
    """Bring the table's columns in line with the catalog's in place; -> (table, what changed). Raises
    SchemaChangeError naming the columns when that cannot be done in place."""
    from sf_platform.hub.changes import plain_schema

    plan = columnar.plan_evolution(plain_schema(table), arrow_schema(columns), keep=BOOKKEEPING)
    if plan.incompatible:
        raise SchemaChangeError(f"{'.'.join(table.name())}: {'; '.join(plan.incompatible)}")
    if not plan.changes:
        return table, []
    with table.update_schema() as update:
        for name, arrow_type, after in plan.add:
            update.add_column(name, iceberg_type(arrow_type))
            if after is None:
                update.move_first(name)
            else:
                update.move_after(name, after)
        for name, arrow_type in plan.widen:
            update.update_column(name, field_type=iceberg_type(arrow_type))
    done = [f"added {n} {t}" for n, t, _ in plan.add] + [f"widened {n} to {t}" for n, t in plan.widen]
    return table.refresh(), done


def iceberg_type(arrow_type: pa.DataType):
    """The Iceberg type of a catalog column's Arrow type (``core.types.to_arrow``)."""
    from pyiceberg import types as it

    if pa.types.is_decimal(arrow_type):
        return it.DecimalType(arrow_type.precision, arrow_type.scale)
    simple = {
        pa.int8(): it.IntegerType(), pa.int16(): it.IntegerType(), pa.int32(): it.IntegerType(),
        pa.int64(): it.LongType(), pa.float32(): it.FloatType(), pa.float64(): it.DoubleType(),
        pa.bool_(): it.BooleanType(), pa.date32(): it.DateType(), pa.timestamp("us"): it.TimestampType(),
        pa.string(): it.StringType(), pa.large_string(): it.StringType(),
    }
    if arrow_type not in simple:
        raise HubError(f"no Iceberg type for Arrow type {arrow_type}")
    return simple[arrow_type]


# ------------------------------------------------------------------------------------------ commits


def commit_files(
    table: Table, *, removed: Sequence[DataFile], added: Sequence[DataFile], properties: Mapping[str, str]
) -> Table:
    """One snapshot that removes ``removed`` and adds ``added`` (an APPEND when nothing is removed), with
    ``properties`` in its summary. Raises one of ``conflict_errors()`` when another writer won."""
    with table.transaction() as tx:
        update = tx.update_snapshot(snapshot_properties=dict(properties))
        producer = update.overwrite() if removed else update.fast_append()
        with producer:
            for data_file in removed:
                producer.delete_data_file(data_file)
            for data_file in added:
                producer.append_data_file(data_file)
    return table.refresh()


def live_files(table: Table, row_filter=None) -> list[DataFile]:
    """The current snapshot's data files (those that may hold rows matching ``row_filter``)."""
    if table.current_snapshot() is None:
        return []
    scan = table.scan(row_filter=row_filter) if row_filter is not None else table.scan()
    return [task.file for task in scan.plan_files()]


def partition_of(table: Table, data_file: DataFile) -> tuple:
    """A data file's partition values, in the table's partition field order."""
    fields = table.spec().fields
    return tuple(data_file.partition[i] for i in range(len(fields)))


def read_file(table: Table, data_file: DataFile):
    """The rows of one data file in the table's current schema, batch by batch, through the hub's one
    data-file reader (``hub.stream``: a row group at a time; pyiceberg's ArrowScan would hold the whole
    file)."""
    from sf_platform.hub.changes import plain_schema
    from sf_platform.hub.stream import read_batches

    yield from read_batches(table, data_file, plain_schema(table))
