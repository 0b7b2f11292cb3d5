"""The new-file sensor: a run through the whole chain for exactly the tables whose files are new or changed.

Automation choice: the sensor targets the chain. One run per table with new or changed objects selects
``s3/<table>`` and everything downstream of it (catalog, MySQL, Snowflake), so a landed file reaches
MySQL and Snowflake with no manual step, and the run key (table + each object's key and ETag) means a
file never triggers two runs.

Each tick lists the loose files at the bucket root and at most ``SF_SENSOR_LIST_BUDGET`` keys of the
table folders: a bucket bigger than that is swept over several ticks (see ``core/sensor_cursor``), so
what a tick lists is bounded by the budget, not by the size of the bucket. A loose file's run moves it into its folder
with the same ETag; the cursor expects that copy, so it does not trigger a second run.

With ``SF_LANDING_QUEUE_URL`` set, each tick also reads the bucket's S3 event notifications from SQS:
a new file is then reported on the next tick wherever the sweep is, and the sweep is the safety net for
any notification that never arrives.
"""

import hashlib
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import dagster as dg
from botocore.exceptions import ClientError

from sf_platform import settings
from sf_platform.assets.names import run_tags, s3_key
from sf_platform.core.ledger import normalize_etag
from sf_platform.core.naming import classify_loose_key, is_data_key, is_hidden_name, table_of_key
from sf_platform.core.registry import Registry
from sf_platform.core.s3_events import objects_of_message
from sf_platform.core.sensor_cursor import Cursor, ListedObject
from sf_platform.hops.crawl import PROFILE_CACHE_ROOT, crawled_etags, profile_cache_key
from sf_platform.resources.aws import LandingBucket, LandingEvents

EVENTS_PER_TICK = 1000  # S3 notifications read per tick (10 per SQS call); more wait for the next tick
PROFILE_READERS = 8  # crawl profile caches read at once by a first tick (each GET mostly waits)


def table_for_key(key: str, pattern: str) -> str | None:
    """The table an object belongs to: its prefix, or for a loose root file the organize pattern's table."""
    if "/" not in key:
        return classify_loose_key(key, pattern).table
    return table_of_key(key) if is_data_key(key) else None


def scan(
    landing: LandingBucket, cursor: Cursor, skip_folders: set[str], budget: int, lag: timedelta, now: datetime
) -> tuple[list[ListedObject], int]:
    """One tick's look at the bucket: all the loose files at the root (every tick: that is where files
    land), then the current sweep's next ``budget`` keys of the table folders, resumed where the last tick
    stopped. Folders the platform writes to (hidden ``_curated/``, ``_quarantine/``, ..., and
    ``skip_folders`` such as the exports prefix) are never listed. -> (new or changed objects, keys listed)."""
    loose, folders = landing.list_top_level()
    if cursor.sweep is None:
        cursor.begin_sweep((f for f in folders if f not in skip_folders and not is_hidden_name(f)), now)
    fresh = cursor.observe(map(_listed, loose), lag)
    in_folders = 0
    while cursor.sweep.folders and in_folders < budget:
        # One flat listing from the current folder on, across folders in key order: 1,000 small table
        # folders cost a few pages, not 1,000 requests. Keys of folders the sweep does not watch
        # (platform folders, root files) are passed over; the next page starts at the next watched folder.
        page, more = landing.list_page(
            "", after=cursor.sweep.after or f"{cursor.sweep.folders[0]}/", max_keys=min(1000, budget - in_folders)
        )
        in_folders += len(page)
        mine = []
        for obj in page:
            while cursor.sweep.folders and obj["Key"] > f"{cursor.sweep.folders[0]}/" and not obj["Key"].startswith(
                f"{cursor.sweep.folders[0]}/"
            ):
                cursor.folder_done()
            if cursor.sweep.folders and obj["Key"].startswith(f"{cursor.sweep.folders[0]}/"):
                mine.append(obj)
        fresh += cursor.observe(map(_listed, mine), lag)
        if not more:
            while cursor.sweep.folders:
                cursor.folder_done()
        elif cursor.sweep.folders and page[-1]["Key"].startswith(f"{cursor.sweep.folders[0]}/"):
            cursor.listed_up_to(page[-1]["Key"])
    if not cursor.sweep.folders:
        cursor.end_sweep(now, lag)
    return fresh, len(loose) + in_folders


def watched(key: str, skip_folders: set[str]) -> bool:
    """Whether ``key`` is somewhere files land: the root or a table folder, not a platform folder."""
    folder = key.split("/")[0] if "/" in key else ""
    return not folder or (folder not in skip_folders and not is_hidden_name(folder))


def read_events(
    context: dg.SensorEvaluationContext, events: LandingEvents, bucket: str, interval: int
) -> tuple[list[ListedObject], list[dict]]:
    """The objects the waiting S3 notifications announce, and the messages read (to delete once
    handled). A message that is no S3 event is left in the queue (its dead-letter queue, if set,
    takes it after a few receives) and reported."""
    announced, read = [], []
    for message in events.receive(EVENTS_PER_TICK, visibility_seconds=max(60, 4 * interval)):
        try:
            announced += objects_of_message(message.get("Body"), bucket).created
        except ValueError as exc:
            context.log.warning(
                f"SQS message {message.get('MessageId')} is not an S3 event, left in the queue: {exc}"
            )
            continue
        read.append(message)
    return announced, read


def _listed(obj: dict) -> ListedObject:
    return ListedObject(obj["Key"], obj["ETag"], obj["LastModified"])


def run_key(table: str, objects: list[ListedObject]) -> str:
    # the ETag without its quotes: listings quote it, S3 event notifications do not
    text = "\n".join(f"{o.key}\t{normalize_etag(o.etag)}" for o in objects)
    digest = hashlib.sha256(text.encode()).hexdigest()[:24]
    return f"{table}:{digest}"


def file_tags(objects: list[ListedObject], limit: int = 1000) -> dict[str, str]:
    """Which files a run was requested for, as run tags the UI shows (the key list cut at ``limit``)."""
    keys, shown = [o.key for o in objects], ""
    for i, key in enumerate(keys):
        more = f"... ({len(keys) - i} more)"
        if len(shown) + len(key) + 2 + len(more) + 2 > limit:
            shown += (", " if shown else "") + more
            break
        shown += (", " if shown else "") + key
    return {"sf/new_files": str(len(keys)), "sf/new_file_keys": shown}


def already_done(landing: LandingBucket, fresh: list[ListedObject], pattern: str) -> list[ListedObject]:
    """Of a first tick's objects, those the platform already crawled (same key and ETag in the table's
    crawl profile cache): a first sweep over a loaded bucket requests no run for them.

    One listing of the profile caches first, then a GET only for the tables that have one,
    PROFILE_READERS at a time: a GET per table, one after the other, cost 19 s of a 28 s first tick
    over 1,000 never-crawled table folders (bench_registry.py on moto)."""
    by_table: dict[str, list[ListedObject]] = defaultdict(list)
    for obj in fresh:
        if "/" in obj.key and (table := table_for_key(obj.key, pattern)):
            by_table[table].append(obj)
    cached = {o["Key"] for o in landing.list_objects(f"{PROFILE_CACHE_ROOT}/")}
    tables = [t for t in by_table if profile_cache_key(t) in cached]
    with ThreadPoolExecutor(max_workers=PROFILE_READERS, thread_name_prefix="sf-sensor") as pool:
        crawled_by_table = dict(zip(tables, pool.map(lambda t: crawled_etags(landing, t), tables), strict=True))
    done = []
    for table, crawled in crawled_by_table.items():
        etags = {k: normalize_etag(e) for k, e in crawled.items()}
        done += [o for o in by_table[table] if etags.get(o.key) == normalize_etag(o.etag)]
    return done


def build_landing_sensor(registry: Registry, job_name: str) -> dg.SensorDefinition:
    interval = int(settings.get("SF_SENSOR_INTERVAL_SECONDS"))
    lag = timedelta(seconds=int(settings.get("SF_SENSOR_LAG_SECONDS")))
    budget = int(settings.get("SF_SENSOR_LIST_BUDGET"))
    if budget < 1:
        raise ValueError(f"SF_SENSOR_LIST_BUDGET must be at least 1 (keys per tick), not {budget}")
    pattern = registry.landing.loose_file_pattern
    skip_folders = {registry.exports.prefix.split("/")[0]} if registry.exports else set()
    @dg.sensor(
        name="landing_files",
        description="Requests a run of s3/<table> and everything downstream for each table with new or changed files.",
        minimum_interval_seconds=interval,
        default_status=dg.DefaultSensorStatus.RUNNING,
        job_name=job_name,
    )
    def landing_files(
        context: dg.SensorEvaluationContext, landing: LandingBucket, landing_events: LandingEvents
    ):
        cursor, now = Cursor.from_json(context.cursor), datetime.now(UTC)
        try:
            fresh, listed = scan(landing, cursor, skip_folders, budget, lag, now)
            if context.cursor is None and fresh:  # first tick: what is crawled already is no news
                done = {(o.key, o.etag) for o in already_done(landing, fresh, pattern)}
                fresh = [o for o in fresh if (o.key, o.etag) not in done]
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "NoSuchBucket":
                return dg.SkipReason(f"bucket {landing.bucket} does not exist yet")
            raise
        read: list[dict] = []
        if landing_events.enabled:
            announced, read = read_events(context, landing_events, landing.bucket, interval)
            fresh += cursor.announce((o for o in announced if watched(o.key, skip_folders)), lag)
        by_table: dict[str, list[ListedObject]] = defaultdict(list)
        unregistered: set[str] = set()
        for obj in sorted(fresh, key=lambda o: o.key):
            table = table_for_key(obj.key, pattern)
            if table is None:
                continue
            if table not in registry.tables:
                unregistered.add(table)
                continue
            by_table[table].append(obj)
            if "/" not in obj.key:  # the run organizes it into its folder: that copy is not a new file
                cursor.expect(classify_loose_key(obj.key, pattern).destination, obj.etag, now)
        if unregistered:
            context.log.warning(
                f"new files for tables not in {registry.source}: {sorted(unregistered)}; "
                "run `sf-platform discover` to propose registry entries"
            )
        requests = [
            dg.RunRequest(
                run_key=run_key(table, objects),
                asset_selection=list(
                    (dg.AssetSelection.assets(s3_key(table)).downstream() - dg.AssetSelection.groups("exports"))
                    .resolve(_graph(context))
                ),
                tags={**run_tags([table], "landing_files"), **file_tags(objects)},
            )
            for table, objects in sorted(by_table.items())
        ]
        context.update_cursor(cursor.to_json())
        # Deleted before Dagster stores the run requests: if this tick dies now, the sweep still lists
        # those files (their run only waits for it).
        landing_events.delete(read)
        if not requests:
            progress = f"; sweep resumes at {cursor.sweep.folders[0]}/" if cursor.sweep else ""
            notified = f", {len(read)} notifications read" if landing_events.enabled else ""
            return dg.SkipReason(f"no new or changed files ({listed} objects listed{notified}{progress})")
        return requests

    return landing_files


def _graph(context: dg.SensorEvaluationContext):
    return context.repository_def.asset_graph
