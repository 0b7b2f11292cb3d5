"""Landing assets: the bucket root and one ``s3/<table>`` asset per registered table (organize hop)."""

import dagster as dg

from sf_platform.core.naming import is_data_key
from sf_platform.core.registry import Registry
from sf_platform.hops.organize import organize, unregistered_prefixes
from sf_platform.resources.aws import LandingBucket

LANDING_KEY = dg.AssetKey("landing")


def s3_key(table: str) -> dg.AssetKey:
    return dg.AssetKey(["s3", table])


def landing_spec() -> dg.AssetSpec:
    return dg.AssetSpec(
        LANDING_KEY,
        description="Loose files at the landing bucket root (TABLE_NAME_YYYYMMDDHHMM.csv), written by exports.",
        kinds={"s3"},
        group_name="landing",
    )


def build_organize_asset(registry: Registry) -> dg.AssetsDefinition:
    specs = [
        dg.AssetSpec(
            s3_key(table),
            deps=[LANDING_KEY],
            description=config.description or f"Files of {table} under s3://<landing bucket>/{table}/",
            kinds={"s3"},
            group_name="s3",
            skippable=True,
        )
        for table, config in registry.tables.items()
    ]

    @dg.multi_asset(name="organize_landing", specs=specs, can_subset=True)
    def organize_landing(context: dg.AssetExecutionContext, landing: LandingBucket):
        """Move loose root files into their table prefixes, then report each selected table's files."""
        landing.ensure_bucket()
        report = organize(landing, registry.landing.loose_file_pattern)
        for key, reason in report.left_in_place.items():
            context.log.warning(f"left in place: {key}: {reason}")
        for key, error in report.failed.items():
            context.log.error(f"not moved (source kept): {key}: {error}")
        unregistered = unregistered_prefixes(landing, set(registry.tables))
        if unregistered:
            context.log.warning(
                f"table prefixes not in {registry.source}: {unregistered}; "
                "run `sf-platform discover` to propose registry entries"
            )
        for asset_key in context.selected_asset_keys:
            table = asset_key.path[-1]
            objects = [o for o in landing.list_objects(f"{table}/") if is_data_key(o["Key"])]
            yield dg.MaterializeResult(
                asset_key=asset_key,
                metadata={
                    "dagster/table_name": landing.uri(f"{table}/"),
                    "files": len(objects),
                    "bytes": sum(int(o["Size"]) for o in objects),
                    **{f"{name}_this_run": value for name, value in report.summary(table).items()},
                    "root_objects_listed": report.listed,
                    "left_in_place": dg.MetadataValue.json(report.left_in_place),
                    "move_failures": dg.MetadataValue.json(report.failed),
                    "unfinished_copies_aborted": dg.MetadataValue.json(report.aborted_uploads),
                    "unregistered_tables": dg.MetadataValue.json(unregistered),
                },
            )

    return organize_landing
