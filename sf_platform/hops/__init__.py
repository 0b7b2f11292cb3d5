"""One module per hop of the chain: organize, crawl, curate (the Iceberg hub), then the MySQL mirror and
the Snowflake load from the hub (one sequence for both: ``sink``), and the Snowflake exports."""
