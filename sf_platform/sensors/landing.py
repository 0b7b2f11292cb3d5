"""The new-file sensor: a run through the whole chain for exactly the tables whose files are new or changed.

Automation choice: the sensor targets the chain. One run per table with new or changed objects selects
``s3/<table>`` and everything downstream of it (catalog, MySQL, Snowflake), so a landed file reaches
MySQL and Snowflake with no manual step, and the run key (table + each object's key and ETag) means a
file never triggers two runs.
"""

import hashlib
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import dagster as dg
from botocore.exceptions import ClientError

from sf_platform import settings
from sf_platform.assets.landing import s3_key
from sf_platform.core.naming import classify_loose_key, is_data_key, is_hidden_name, table_of_key
from sf_platform.core.registry import Registry
from sf_platform.core.sensor_cursor import Cursor, ListedObject, advance
from sf_platform.resources.aws import LandingBucket


def table_for_key(key: str, pattern: str) -> str | None:
    """The table an object belongs to: its prefix, or for a loose root file the organize pattern's table."""
    if "/" not in key:
        return classify_loose_key(key, pattern).table
    return table_of_key(key) if is_data_key(key) else None


def list_landing(landing: LandingBucket, skip_folders: set[str]) -> list[dict]:
    """Loose files at the root and every object in the table folders. Folders the platform writes to
    (hidden ``_curated/``, ``_quarantine/``, ..., and ``skip_folders`` such as the exports prefix) are not
    listed at all; the folders are listed concurrently (one paged listing each)."""
    loose, folders = landing.list_top_level()
    folders = [f for f in folders if f not in skip_folders and not is_hidden_name(f)]
    if not folders:
        return loose
    with ThreadPoolExecutor(min(8, len(folders))) as pool:
        listings = pool.map(lambda folder: landing.list_objects(f"{folder}/"), folders)
        return [*loose, *(o for listing in listings for o in listing)]


def run_key(table: str, objects: list[ListedObject]) -> str:
    digest = hashlib.sha256("\n".join(f"{o.key}\t{o.etag}" for o in objects).encode()).hexdigest()[:24]
    return f"{table}:{digest}"


def build_landing_sensor(registry: Registry) -> dg.SensorDefinition:
    interval = int(settings.get("SF_SENSOR_INTERVAL_SECONDS"))
    lag = timedelta(seconds=int(settings.get("SF_SENSOR_LAG_SECONDS")))
    pattern = registry.landing.loose_file_pattern
    skip_folders = {registry.exports.prefix.split("/")[0]} if registry.exports else set()
    every_chain = dg.AssetSelection.assets(*[s3_key(t) for t in registry.tables]).downstream()

    @dg.sensor(
        name="landing_files",
        description="Requests a run of s3/<table> and everything downstream for each table with new or changed files.",
        minimum_interval_seconds=interval,
        default_status=dg.DefaultSensorStatus.RUNNING,
        target=every_chain,
    )
    def landing_files(context: dg.SensorEvaluationContext, landing: LandingBucket):
        cursor = Cursor.from_json(context.cursor)
        try:
            objects = list_landing(landing, skip_folders)
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "NoSuchBucket":
                return dg.SkipReason(f"bucket {landing.bucket} does not exist yet")
            raise
        listing = [ListedObject(o["Key"], o["ETag"], o["LastModified"]) for o in objects]
        fresh, next_cursor = advance(cursor, listing, lag)
        by_table: dict[str, list[ListedObject]] = defaultdict(list)
        unregistered: set[str] = set()
        for obj in fresh:
            table = table_for_key(obj.key, pattern)
            if table is None:
                continue
            if table in registry.tables:
                by_table[table].append(obj)
            else:
                unregistered.add(table)
        if unregistered:
            context.log.warning(
                f"new files for tables not in {registry.source}: {sorted(unregistered)}; "
                "run `sf-platform discover` to propose registry entries"
            )
        requests = [
            dg.RunRequest(
                run_key=run_key(table, objects),
                asset_selection=list(
                    dg.AssetSelection.assets(s3_key(table)).downstream().resolve(_graph(context))
                ),
                tags={"sf/table": table, "sf/trigger": "landing_files"},
            )
            for table, objects in sorted(by_table.items())
        ]
        context.update_cursor(next_cursor.to_json())
        if not requests:
            return dg.SkipReason(f"no new or changed files ({len(listing)} objects listed)")
        return requests

    return landing_files


def _graph(context: dg.SensorEvaluationContext):
    return context.repository_def.asset_graph
