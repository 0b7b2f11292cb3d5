"""The hub reader (``hub.changes``) against Iceberg tables built with plain pyiceberg on the test moto
server: a target that applies ``changes_since`` (delete ``removed_keys``, insert ``batches()``, or rebuild
on ``full``) must hold exactly the table's rows at ``snapshot_id``, through appends, a replaced object,
a deleted object, a compaction in the window, an expired snapshot and a rollback -- and, with small data
files, objects whose rows span several files while one of those files is rewritten (a neighbour
replaced, a partial compaction), also in random sequences of appends, replaces, deletes and
partial compactions."""

from __future__ import annotations

import itertools
import random
import subprocess
import sys
from collections.abc import Sequence

import pyarrow as pa
import pytest

from sf_platform.hub.changes import Hub, HubChanges
from sf_platform.hub.conventions import COMPACTION, CURATE, OPERATION, ROW, SOURCE_KEY

pytestmark = pytest.mark.integration

SCHEMA = pa.schema([
    pa.field("id", pa.int64()), pa.field("name", pa.string()),
    pa.field(SOURCE_KEY, pa.string()), pa.field(ROW, pa.int64()),
])
PROPS = {OPERATION: CURATE}


@pytest.fixture()
def hub(landing, glue):
    hub = Hub(landing, glue, database=f"{glue.database}_curated")
    glue.ensure_database(hub.database)
    return hub


SMALL_FILES = {"write.target-file-size-bytes": "1024"}  # ~20 rows of _rows per data file


def _create(hub: Hub, name: str, properties: dict[str, str] | None = None):
    return hub.catalog().create_table(
        hub.identifier(name), schema=SCHEMA, location=hub.location(name), properties=properties or {})


def _rows(key: str, ids: Sequence[int]) -> pa.Table:
    return pa.table({
        "id": pa.array(list(ids), pa.int64()),
        "name": [f"{key}-{i}" for i in ids],
        SOURCE_KEY: [key] * len(ids),
        ROW: pa.array(range(1, len(ids) + 1), pa.int64()),
    }, schema=SCHEMA)


class Target:
    """A downstream copy that loads the hub the way the MySQL and Snowflake loads do."""

    def __init__(self):
        self.rows: dict[tuple[str, int], tuple] = {}
        self.snapshot_id: int | None = None

    def apply(self, changes: HubChanges) -> None:
        if changes.full:
            self.rows = {}
        else:
            self.rows = {k: v for k, v in self.rows.items() if k[0] not in changes.removed_keys}
        inserted = 0
        for batch in changes.batches():
            assert batch.schema.equals(changes.schema)
            for row in batch.to_pylist():
                key = (row[SOURCE_KEY], row[ROW])
                assert key not in self.rows, f"{key} inserted twice"
                self.rows[key] = (row["id"], row["name"])
                inserted += 1
        assert inserted == changes.rows
        self.snapshot_id = changes.snapshot_id


def _table_rows(table) -> dict[tuple[str, int], tuple]:
    rows = table.scan().to_arrow().to_pylist()
    return {(r[SOURCE_KEY], r[ROW]): (r["id"], r["name"]) for r in rows}


def _sync(hub: Hub, name: str, target: Target) -> HubChanges:
    changes = hub.changes_since(name, target.snapshot_id)
    target.apply(changes)
    table = hub.require(name)
    assert target.snapshot_id == table.current_snapshot().snapshot_id == hub.current_snapshot_id(name)
    assert target.rows == _table_rows(table)
    return changes


def test_first_load_appends_and_nothing_new(hub):
    table = _create(hub, "t")
    table.append(pa.concat_tables([_rows("t/a.csv", range(0, 3)), _rows("t/b.csv", range(3, 5))]),
                 snapshot_properties=PROPS)
    target = Target()
    first = _sync(hub, "t", target)
    assert first.full and first.rows == 5 and first.removed_keys == frozenset()
    assert [f.name for f in first.schema] == ["id", "name", SOURCE_KEY, ROW]
    assert all(uri.startswith(f"s3://{hub.landing.bucket}/_curated/t/data/") for uri in first.data_files)

    hub.require("t").append(_rows("t/c.csv", range(5, 7)), snapshot_properties=PROPS)
    second = _sync(hub, "t", target)
    assert not second.full and second.rows == 2
    assert second.removed_keys == {"t/c.csv"}  # only the keys of the new file
    assert len(second.data_files) == 1

    same = hub.changes_since("t", target.snapshot_id)
    assert (same.snapshot_id, same.full, same.removed_keys, same.data_files, same.rows) == (
        target.snapshot_id, False, frozenset(), (), 0)
    assert list(same.batches()) == []


def test_replaced_object_sharing_a_file_moves_its_neighbours(hub):
    table = _create(hub, "t")
    table.append(pa.concat_tables([_rows("t/a.csv", range(0, 3)), _rows("t/b.csv", range(3, 5))]),
                 snapshot_properties=PROPS)
    target = Target()
    _sync(hub, "t", target)
    from pyiceberg.expressions import EqualTo

    table = hub.require("t")
    with table.transaction() as tx:  # a replaced object: delete + append in one transaction
        tx.delete(EqualTo(SOURCE_KEY, "t/a.csv"), snapshot_properties=PROPS)
        tx.append(_rows("t/a.csv", range(100, 104)), snapshot_properties=PROPS)
    changes = _sync(hub, "t", target)
    assert changes.removed_keys == {"t/a.csv", "t/b.csv"}  # b's rows were rewritten into a new file
    assert changes.rows == 4 + 2
    assert sorted(v[0] for v in target.rows.values()) == [3, 4, 100, 101, 102, 103]


def test_deleted_object(hub):
    table = _create(hub, "t")
    table.append(_rows("t/a.csv", range(0, 3)), snapshot_properties=PROPS)
    table.append(_rows("t/b.csv", range(3, 5)), snapshot_properties=PROPS)
    target = Target()
    _sync(hub, "t", target)
    from pyiceberg.expressions import EqualTo

    hub.require("t").delete(EqualTo(SOURCE_KEY, "t/a.csv"), snapshot_properties=PROPS)
    changes = _sync(hub, "t", target)
    assert changes.removed_keys == {"t/a.csv"} and changes.rows == 0  # a's file dropped whole
    assert {k[0] for k in target.rows} == {"t/b.csv"}


def _compact(table, files=None) -> None:
    """``files`` (default: every live file) rewritten, in ONE snapshot tagged sf.operation=compaction."""
    from pyiceberg.expressions import AlwaysTrue
    from pyiceberg.io.pyarrow import ArrowScan, _dataframe_to_data_files
    from pyiceberg.table import FileScanTask

    live = [task.file for task in table.scan().plan_files()] if files is None else list(files)
    scan = ArrowScan(table.metadata, table.io, table.schema(), AlwaysTrue())
    rows = scan.to_table([FileScanTask(f) for f in live]).cast(SCHEMA)
    with table.transaction() as tx:
        with tx.update_snapshot(snapshot_properties={OPERATION: COMPACTION}).overwrite() as producer:
            for data_file in live:
                producer.delete_data_file(data_file)
            for data_file in _dataframe_to_data_files(
                table_metadata=tx.table_metadata, write_uuid=producer.commit_uuid, df=rows, io=table.io,
                counter=itertools.count(0),
            ):
                producer.append_data_file(data_file)


def test_compaction_in_the_window(hub):
    table = _create(hub, "t")
    for n, key in enumerate(("t/a.csv", "t/b.csv", "t/c.csv")):
        table.append(_rows(key, range(10 * n, 10 * n + 2)), snapshot_properties=PROPS)
    target = Target()
    _sync(hub, "t", target)

    _compact(hub.require("t"))  # only rows the target holds: nothing moves
    assert len(list(hub.require("t").scan().plan_files())) == 1
    quiet = _sync(hub, "t", target)
    assert (quiet.full, quiet.removed_keys, quiet.rows) == (False, frozenset(), 0)

    before = target.snapshot_id
    hub.require("t").append(_rows("t/d.csv", range(30, 33)), snapshot_properties=PROPS)
    _compact(hub.require("t"))  # rewrites a file the target does not hold yet: the rewrite is loaded
    mixed = _sync(hub, "t", target)
    assert target.snapshot_id != before and not mixed.full
    assert len(target.rows) == 9

    lagging = Target()  # loaded before both compactions: appends + compactions in one window
    lagging.apply(hub.changes_since("t", None))
    assert lagging.rows == target.rows


def _files_of(table, key: str) -> list:
    """The live data files holding rows of ``key`` (read, not guessed from statistics)."""
    import pyarrow.parquet as pq

    found = []
    for task in table.scan().plan_files():
        with table.io.new_input(task.file.file_path).open() as stream:
            if key in pq.read_table(stream, columns=[SOURCE_KEY]).column(SOURCE_KEY).to_pylist():
                found.append(task.file)
    return found


def test_replaced_neighbour_of_an_object_spanning_files(hub):
    table = _create(hub, "t", SMALL_FILES)
    a = _rows("t/a.csv", range(0, 100))  # b in the middle of a: b's file holds rows of a too
    rows = pa.concat_tables([a.slice(0, 50), _rows("t/b.csv", range(100, 103)), a.slice(50)])
    table.append(rows.combine_chunks(), snapshot_properties=PROPS)
    a_files = {f.file_path for f in _files_of(hub.require("t"), "t/a.csv")}
    b_files = {f.file_path for f in _files_of(hub.require("t"), "t/b.csv")}
    assert len(a_files) >= 3 and len(b_files) == 1 and b_files < a_files  # b shares one of a's files
    target = Target()
    _sync(hub, "t", target)
    from pyiceberg.expressions import EqualTo

    with hub.require("t").transaction() as tx:  # b replaced: only the file it shares with a is rewritten
        tx.delete(EqualTo(SOURCE_KEY, "t/b.csv"), snapshot_properties=PROPS)
        tx.append(_rows("t/b.csv", range(200, 202)), snapshot_properties=PROPS)
    changes = _sync(hub, "t", target)  # asserts the target equals a scan of the table
    assert changes.removed_keys == {"t/a.csv", "t/b.csv"}
    assert changes.rows == 100 + 2  # every file of a is reloaded with it, nothing else
    assert sorted(v[0] for v in target.rows.values()) == [*range(0, 100), 200, 201]


def test_compaction_of_some_files(hub):
    table = _create(hub, "t", SMALL_FILES)
    table.append(_rows("t/a.csv", range(0, 60)), snapshot_properties=PROPS)
    table.append(_rows("t/c.csv", range(500, 505)), snapshot_properties=PROPS)
    target, lagging = Target(), Target()
    _sync(hub, "t", target)
    _sync(hub, "t", lagging)

    table = hub.require("t")
    table.append(_rows("t/d.csv", range(1000, 1003)), snapshot_properties=PROPS)
    some_of_a = _files_of(table, "t/a.csv")[:1]
    _compact(table, some_of_a + _files_of(table, "t/d.csv"))  # a file of a with the new one
    changes = _sync(hub, "t", lagging)
    assert changes.removed_keys == {"t/a.csv", "t/d.csv"} and changes.rows == 60 + 3
    _sync(hub, "t", target)

    table = hub.require("t")  # a compaction of held files only: nothing moves
    _compact(table, _files_of(table, "t/a.csv")[1:3])
    quiet = _sync(hub, "t", target)
    assert (quiet.removed_keys, quiet.rows) == (frozenset(), 0)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_random_histories(hub, seed):
    """Random appends, replaces, deletes and partial compactions; one target follows every snapshot,
    another at random moments; both equal the table at every sync."""
    from pyiceberg.expressions import EqualTo

    rng = random.Random(seed)
    name = f"r{seed}"
    _create(hub, name, SMALL_FILES)
    keys: list[str] = []
    eager, lagging = Target(), Target()
    next_id = itertools.count()
    for step in range(10):
        table = hub.require(name)
        ops = ["append"] + (["replace", "delete", "compact"] if keys else [])
        op = rng.choice(ops)
        if op == "append":
            new = [f"{name}/{step}-{n}.csv" for n in range(rng.randint(1, 3))]
            table.append(pa.concat_tables([_rows(k, [next(next_id) for _ in range(rng.randint(1, 45))])
                                           for k in new]), snapshot_properties=PROPS)
            keys += new
        elif op == "replace":
            key = rng.choice(keys)
            with table.transaction() as tx:
                tx.delete(EqualTo(SOURCE_KEY, key), snapshot_properties=PROPS)
                tx.append(_rows(key, [next(next_id) for _ in range(rng.randint(1, 45))]),
                          snapshot_properties=PROPS)
        elif op == "delete":
            key = rng.choice(keys)
            table.delete(EqualTo(SOURCE_KEY, key), snapshot_properties=PROPS)
            keys.remove(key)
        else:
            live = [task.file for task in table.scan().plan_files()]
            if len(live) >= 2:
                _compact(table, rng.sample(live, rng.randint(2, min(4, len(live)))))
        _sync(hub, name, eager)
        if rng.random() < 0.35:
            _sync(hub, name, lagging)
    _sync(hub, name, lagging)
    assert lagging.rows == eager.rows


def test_expired_or_foreign_snapshot_means_full(hub):
    table = _create(hub, "t")
    table.append(_rows("t/a.csv", range(0, 2)), snapshot_properties=PROPS)
    first = hub.current_snapshot_id("t")
    hub.require("t").append(_rows("t/b.csv", range(2, 4)), snapshot_properties=PROPS)
    second = hub.current_snapshot_id("t")
    hub.require("t").append(_rows("t/c.csv", range(4, 6)), snapshot_properties=PROPS)
    third = hub.current_snapshot_id("t")

    hub.require("t").maintenance.expire_snapshots().by_id(first).commit()
    expired = hub.changes_since("t", first)
    assert expired.full and expired.rows == 6 and expired.removed_keys == frozenset()

    hub.require("t").manage_snapshots().rollback_to_snapshot(second).commit()
    hub.require("t").append(_rows("t/d.csv", range(6, 7)), snapshot_properties=PROPS)
    target = Target()
    target.snapshot_id = third  # loaded the head that was rolled back: still in the metadata, no ancestor
    rolled_back = hub.changes_since("t", target.snapshot_id)
    assert rolled_back.full
    target.apply(rolled_back)
    assert target.rows == _table_rows(hub.require("t"))
    assert {k[0] for k in target.rows} == {"t/a.csv", "t/b.csv", "t/d.csv"}
    assert hub.changes_since("t", 12345).full  # never a snapshot of this table


def test_rows_in_the_current_schema_by_field_id_in_bounded_batches(hub):
    """Older files are read in the current schema: a renamed column keeps its values (matched by field
    id), an added one reads as null, a widened one is cast; a file is read a few rows at a time."""
    from pyiceberg.types import LongType

    from sf_platform.hub.stream import read_batches

    old = pa.schema([pa.field("id", pa.int32()), pa.field("name", pa.string()),
                     pa.field(SOURCE_KEY, pa.string()), pa.field(ROW, pa.int64())])
    table = hub.catalog().create_table(hub.identifier("t"), schema=old, location=hub.location("t"))
    table.append(_rows("t/a.csv", range(0, 20)).cast(old), snapshot_properties=PROPS)
    with table.update_schema() as update:
        update.rename_column("name", "label")
        update.update_column("id", field_type=LongType())
        update.add_column("extra", LongType())
    new = hub.require("t")
    later = _rows("t/b.csv", range(20, 22)).rename_columns(["id", "label", SOURCE_KEY, ROW])
    new.append(later.append_column("extra", pa.array([7, 8], pa.int64())), snapshot_properties=PROPS)

    changes = hub.changes_since("t", None)
    assert changes.schema.names == ["id", "label", SOURCE_KEY, ROW, "extra"]
    assert changes.schema.field("id").type == pa.int64()
    rows = pa.Table.from_batches(list(changes.batches()), schema=changes.schema).sort_by("id").to_pylist()
    assert len(rows) == changes.rows == 22
    assert rows[0] == {"id": 0, "label": "t/a.csv-0", SOURCE_KEY: "t/a.csv", ROW: 1, "extra": None}
    assert rows[21] == {"id": 21, "label": "t/b.csv-21", SOURCE_KEY: "t/b.csv", ROW: 2, "extra": 8}

    first = next(task.file for task in new.scan().plan_files() if task.file.record_count == 20)
    batches = list(read_batches(new, first, changes.schema, batch_rows=7))
    assert [b.num_rows for b in batches] == [7, 7, 6]
    assert pa.Table.from_batches(batches).column("label").to_pylist() == [f"t/a.csv-{i}" for i in range(20)]


def test_importing_definitions_does_not_import_pyiceberg():
    code = "import sys, sf_platform.definitions, sf_platform.hub.changes; print('pyiceberg' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
