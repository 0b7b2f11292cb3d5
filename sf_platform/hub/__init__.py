"""The hub: the curated layer as one Apache Iceberg table per registry table (issue 14).

``conventions`` holds the names every writer and reader agrees on; ``catalog`` opens the pyiceberg Glue
catalog from our resources; ``changes`` is the incremental reader the MySQL and Snowflake loads use;
the writer (``writer``, ``maintenance``) is driven by the curate hop.

pyiceberg is imported lazily, inside functions: importing it costs 1.5-3 s and about 110 MB
(docs/iceberg_spike/REPORT.md section 10), and ``import sf_platform.definitions`` must stay cheap.
"""
