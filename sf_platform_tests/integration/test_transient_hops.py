"""A read that breaks off is no verdict on the file, in the crawl and in curation (issue 17).

The landing bucket is reached through a relay to the moto server that resets a connection once it has
passed a few MiB of an answer (``relay_support``): a real reset reaching the real S3 client. The crawl
must fail the table transiently (the step retries it) and never record the file as unreadable, count it
as 0 rows or write a catalog entry without it; curation must leave no partial data file behind.
"""

from __future__ import annotations

import dagster as dg
import pytest

from sf_platform.assets.catalog import CrawlHop
from sf_platform.assets.names import glue_key
from sf_platform.assets.tables import build_hop_assets
from sf_platform.core import columnar, transient
from sf_platform.core.registry import parse_registry
from sf_platform.core.source_file import SourceReadError, TransientReadError
from sf_platform.hops.crawl import PROFILE_CACHE_ROOT, crawl_table
from sf_platform.hops.curate import ALONE_BYTES, curate_table
from sf_platform.hub.catalog import Hub
from sf_platform_tests.relay_support import ResettingRelay, moto_address, relayed_bucket

pytestmark = pytest.mark.integration

BIG = "t/big.csv"
SMALL = "t/small.csv"


def _config():
    return parse_registry({"tables": {"t": {}}}).table("t")


def _csv(rows: int, start: int = 0) -> bytes:
    return b"id,name,note\n" + b"".join(
        b"%d,name %d,a note of some forty bytes\n" % (i, i) for i in range(start, start + rows)
    )


@pytest.fixture()
def relay(stack_env):
    relay = ResettingRelay(moto_address(stack_env))
    try:
        yield relay
    finally:
        relay.close()


def _cached_keys(landing, table: str) -> set[str]:
    return set((landing.read_json(f"{PROFILE_CACHE_ROOT}/{table}/profiles.json") or {}).get("files", {}))


# ------------------------------------------------------------------------------------------ the crawl


def test_a_crawl_whose_read_breaks_off_fails_transiently_and_changes_nothing(stack_env, landing, glue, relay):
    landing.put(SMALL, _csv(2))
    landing.put(BIG, _csv(60_000))  # ~2.6 MiB
    crawl_table(landing, glue, "t", _config())
    before = glue.get_table("t")
    assert before["Parameters"]["recordCount"] == str(60_002)

    landing.put(BIG, _csv(120_000))  # a new version (~5 MiB): it must be read again
    relay.armed = True
    with pytest.raises(TransientReadError) as broken:
        crawl_table(relayed_bucket(stack_env, landing.bucket, relay), glue, "t", _config())
    assert relay.resets >= 1
    assert broken.value.key == BIG and not isinstance(broken.value, SourceReadError)
    assert transient.classify_text(f"{type(broken.value).__name__}: {broken.value}").transient  # as hop.py records it
    # Nothing changed: no new table version, the old counts, the new version of the file not cached
    # (neither as unreadable nor as short), the unchanged small file still cached.
    after = glue.get_table("t")
    assert (after["VersionId"], after["Parameters"]["recordCount"]) == (before["VersionId"], str(60_002))
    cache = landing.read_json(f"{PROFILE_CACHE_ROOT}/t/profiles.json")["files"]
    assert set(cache) == {SMALL}

    relay.armed = False
    report = crawl_table(relayed_bucket(stack_env, landing.bucket, relay), glue, "t", _config())
    assert (report.action, report.unreadable, report.rows, report.profiles_reused) == ("updated", {}, 120_002, 1)
    assert glue.get_table("t")["Parameters"]["recordCount"] == str(120_002)


def test_a_first_crawl_whose_read_breaks_off_writes_no_entry(stack_env, landing, glue, relay):
    """The files profiled before the reset are cached for the retry; the broken one is not."""
    landing.put(SMALL, _csv(2))
    landing.put(BIG, _csv(120_000))
    relay.armed = True
    with pytest.raises(TransientReadError):
        crawl_table(relayed_bucket(stack_env, landing.bucket, relay), glue, "t", _config())
    assert glue.get_table("t") is None
    assert BIG not in _cached_keys(landing, "t")


def test_the_table_step_retries_a_crawl_whose_read_broke_off(stack_env, landing, glue, relay, monkeypatch):
    """Through Dagster: the step fails transiently, retries, and the retry catalogs every row."""
    monkeypatch.setenv("SF_STEP_RETRIES", "2")
    monkeypatch.setenv("SF_STEP_RETRY_SECONDS", "0")
    landing.put(SMALL, _csv(2))
    landing.put(BIG, _csv(120_000))
    relay.max_resets, relay.armed = 1, True
    registry = parse_registry({"tables": {"t": {}}})
    step = build_hop_assets("tables", [CrawlHop(glue.database)], registry)
    result = dg.materialize(
        [step], resources={"landing": relayed_bucket(stack_env, landing.bucket, relay), "glue": glue},
        raise_on_error=False,
    )
    assert result.success
    assert relay.resets == 1
    assert len([e for e in result.all_events if e.event_type_value == "STEP_UP_FOR_RETRY"]) == 1
    (event,) = [e for e in result.get_asset_materialization_events() if e.asset_key == glue_key(glue.database, "t")]
    metadata = event.materialization.metadata
    assert (metadata["unreadable_file_count"].value, metadata["files"].value) == (0, 2)
    assert glue.get_table("t")["Parameters"]["recordCount"] == str(120_002)


# ------------------------------------------------------------------------------------------ curation


def test_a_streamed_object_whose_read_breaks_off_leaves_no_partial_data_file(stack_env, landing, glue, relay, monkeypatch):
    """An object of ALONE_BYTES or more is streamed into data files of its own; with a tiny target size
    several are uploaded before the reset. None may stay behind, and nothing is quarantined."""
    monkeypatch.setenv("SF_HUB_TARGET_FILE_MB", str(16 / 1024**2))  # 16 bytes: every block its own file
    rows = ALONE_BYTES // 40 + 10_000
    landing.put(BIG, _csv(rows))
    assert landing.head(BIG)["ContentLength"] >= ALONE_BYTES
    crawl_table(landing, glue, "t", _config())
    curated = columnar.curated_database(glue.database)
    hub = Hub(landing, glue, curated)
    data_prefix = hub.location("t").removeprefix(f"s3://{landing.bucket}/") + "/data/"

    relay.cut_bytes, relay.armed = 14 << 20, True  # three 4 MiB blocks typed and written first
    broken_bucket = relayed_bucket(stack_env, landing.bucket, relay)
    with pytest.raises(TransientReadError) as broken:
        curate_table(broken_bucket, glue, "t", _config(), curated_database=curated)
    assert broken.value.key == BIG and relay.resets >= 1
    written = [path for method, path in relay.requests if method == "PUT" and data_prefix in path]
    deleted = [path for method, path in relay.requests if method == "DELETE" and data_prefix in path]
    assert written and sorted(deleted) == sorted(written)  # data files were uploaded, then removed
    assert [o["Key"] for o in landing.list_objects(data_prefix)] == []  # no partial data file
    assert [o["Key"] for o in landing.list_objects("_quarantine/")] == []  # not reported as unreadable
    table = hub.load("t")
    assert table is None or table.current_snapshot() is None

    relay.armed = False
    report = curate_table(broken_bucket, glue, "t", _config(), curated_database=curated)
    assert (report.rows, report.problems) == (rows, {})
    assert hub.require("t").scan().to_arrow().num_rows == rows


def test_a_streamed_object_whose_upload_breaks_off_leaves_no_partial_file_and_no_reader(
    stack_env, landing, glue, relay, monkeypatch
):
    """The write fails, not the read: the object's reader (a thread reading ahead, its S3 body) is
    stopped at once, not when the failure's traceback is freed, and nothing uploaded stays behind."""
    import threading

    monkeypatch.setenv("SF_HUB_TARGET_FILE_MB", str(16 / 1024**2))
    rows = ALONE_BYTES // 40 + 10_000
    landing.put(BIG, _csv(rows))
    crawl_table(landing, glue, "t", _config())
    curated = columnar.curated_database(glue.database)
    data_prefix = Hub(landing, glue, curated).location("t").removeprefix(f"s3://{landing.bucket}/") + "/data/"

    relay.cut_bytes, relay.cut_request_bytes, relay.armed = None, 256 << 10, True  # every upload is reset
    with pytest.raises(Exception) as failed:
        curate_table(relayed_bucket(stack_env, landing.bucket, relay), glue, "t", _config(), curated_database=curated)
    # Raised as it came (the connection closed under the upload): transient, for the step to retry.
    assert relay.resets >= 1 and transient.classify(failed.value).transient, failed.value
    # The failure and its traceback are still held here, yet the reader is gone.
    assert [t.name for t in threading.enumerate() if t.name.startswith("curate-reader")] == []
    assert [o["Key"] for o in landing.list_objects(data_prefix)] == []
    assert [o["Key"] for o in landing.list_objects("_quarantine/")] == []
