"""Landing: the bucket root and the organize hop, one ``s3/<table>`` asset per registered table."""

from __future__ import annotations

import dagster as dg

from sf_platform import settings
from sf_platform.assets.hop import Hop, Outcome, TableRun
from sf_platform.assets.names import LANDING_KEY, s3_key
from sf_platform.core.naming import is_data_key
from sf_platform.core.registry import Registry, TableConfig
from sf_platform.hops.organize import OrganizeReport, organize, unregistered_prefixes


def landing_spec() -> dg.AssetSpec:
    return dg.AssetSpec(
        LANDING_KEY,
        description="Loose files at the landing bucket root (TABLE_NAME_YYYYMMDDHHMM.csv), written by exports.",
        kinds={"s3"},
        group_name="landing",
    )


class OrganizeHop(Hop):
    """Moves the loose root files of the step's tables into their prefixes (once, for all of them),
    then reports each table's files."""

    name = "organize"
    resource_keys = frozenset({"landing"})
    kinds = frozenset({"s3"})

    def __init__(self, registry: Registry):
        self.registry = registry

    def key(self, table: str) -> dg.AssetKey:
        return s3_key(table)

    def deps(self, table: str) -> list[dg.AssetKey]:
        return [LANDING_KEY]

    def table_name(self, table: str) -> str:
        return f"s3://{settings.get('SF_LANDING_BUCKET')}/{table}/"

    def description(self, table: str, config: TableConfig) -> str:
        return f"Files of {table} under s3://{settings.get('SF_LANDING_BUCKET')}/{table}/, one folder per table."

    def prepare(self, resources, tables: list[str], log) -> tuple[OrganizeReport, list[str]]:
        landing = resources.landing
        landing.ensure_bucket()
        report = organize(landing, self.registry.landing.loose_file_pattern, tables=set(tables))
        for key, reason in report.left_in_place.items():
            log("warning", f"left in place: {key}: {reason}")
        for key, error in report.failed.items():
            log("error", f"not moved (source kept): {key}: {error}")
        exports = {self.registry.exports.prefix.split("/")[0]} if self.registry.exports else set()  # as the sensor
        unregistered = unregistered_prefixes(landing, set(self.registry.tables) | exports)
        if unregistered:
            log("warning", f"table prefixes not in {self.registry.source}: {unregistered}; "
                "run `sf-platform discover` to propose registry entries")
        return report, unregistered

    def materialize(self, run: TableRun) -> Outcome:
        landing = run.resources.landing
        report, unregistered = run.prepared[self.name]
        objects = [o for o in landing.list_objects(f"{run.table}/") if is_data_key(o["Key"])]
        return Outcome({
            "dagster/table_name": landing.uri(f"{run.table}/"),
            "files": len(objects),
            "bytes": sum(int(o["Size"]) for o in objects),
            **{f"{name}_this_run": value for name, value in report.summary(run.table).items()},
            "root_objects_listed": report.listed,
            "left_in_place": dg.MetadataValue.json(report.left_in_place),
            "move_failures": dg.MetadataValue.json(report.failed),
            "unfinished_copies_aborted": dg.MetadataValue.json(report.aborted_uploads),
            "unregistered_tables": dg.MetadataValue.json(unregistered),
        })
