"""sf_platform: S3 -> Glue catalog -> MySQL / Snowflake, as Dagster assets."""
