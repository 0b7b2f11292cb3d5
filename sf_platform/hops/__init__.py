"""One module per hop of the chain: organize, crawl, MySQL mirror, Snowflake load."""
