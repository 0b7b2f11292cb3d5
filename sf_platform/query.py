"""Query in place: ``sf-platform query "SELECT ..."`` runs SQL (DuckDB's dialect) over catalog tables
where their files lie in S3: raw CSV, or the curated hub's Apache Iceberg tables.

Table names resolve through the Glue catalog: ``raw.<table>`` (SF_GLUE_DATABASE), ``curated.<table>``
(the curated database), ``<glue database>.<table>``, or a bare ``<table>`` (raw). Each table becomes a
pyarrow dataset over its files with the catalog's schema, one fragment per file carrying its
partition's values, registered in DuckDB. DuckDB pushes the query's columns and filters into the Arrow
scanner, so only the partitions, row groups and columns the query needs are read. A raw table's files
are its folder's CSV files (partitions from the catalog); an Iceberg table's are the data files pyiceberg
plans for its current snapshot (never files of replaced rows that older snapshots still reference), read
in the table's current schema (older files lacking newer columns read as null, narrower types are cast),
without the hub's bookkeeping columns. (pyiceberg's own ``to_duckdb`` materializes the whole table in
Python first and pushes no DuckDB filter: REPORT.md section 8.) S3 is read by pyarrow's own S3
filesystem: DuckDB's httpfs extension would be downloaded at run time, so extensions are never installed
or loaded.
"""

from __future__ import annotations

import bisect
import csv
import io
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from urllib.parse import urlparse

import duckdb
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.dataset as ds
import pyarrow.fs as pafs

from sf_platform import settings
from sf_platform.core.columnar import (
    BOOKKEEPING,
    ReadSpec,
    UnreadableTableError,
    curated_database,
    read_spec,
    spectrum_script,
    validate_iam_role,
)
from sf_platform.core.naming import is_data_key
from sf_platform.core.registry import load_registry
from sf_platform.resources.aws import GlueCatalog
from sf_platform.settings import Settings

RAW_ALIAS, CURATED_ALIAS = "raw", "curated"
FORMATS = ("table", "csv", "json")
_TRUE = ["true", "True", "TRUE", "t", "T", "yes", "Yes", "YES", "y", "Y"]
_FALSE = ["false", "False", "FALSE", "f", "F", "no", "No", "NO", "n", "N"]
# One dotted name as DuckDB prints it: "quoted" or bare parts; anything after (" AS m") is dropped.
_NAME_PART = re.compile(r'\s*(?:"((?:[^"]|"")*)"|([^\s."]+))')
_DUCKDB_CONFIG = {"autoinstall_known_extensions": False, "autoload_known_extensions": False}
# An object store answers each request after a first-byte latency, so reads are few and large: a
# Parquet scan merges column chunks that lie less than a few MB apart into one request (Arrow's rule for
# this latency and bandwidth per connection), and CSV files are read in blocks of about that size.
S3_FIRST_BYTE_MS, S3_MIB_PER_S = 50, 100
CSV_BLOCK_BYTES = 32 * 1024**2
S3_REQUEST_TIMEOUT_S = 60


class QueryError(RuntimeError):
    """The query cannot run; the message says why."""


@dataclass(frozen=True)
class Catalog:
    """Where names resolve: the Glue catalog, the database a bare name and each alias stand for."""

    glue: GlueCatalog
    default_database: str
    aliases: Mapping[str, str]

    def database(self, name: str | None) -> str:
        if name is None:
            return self.default_database
        return self.aliases.get(name.lower(), name.lower())


def query(sql: str) -> pa.Table:
    """Run ``sql`` against the catalog and bucket of this deployment (the SF_* settings)."""
    return run_query(sql, catalog_from_settings(), s3_filesystem_from_settings())


def spectrum_ddl(external_schema: str = "", copy_schema: str = "public") -> str:
    """The Redshift statements (``columnar.spectrum_script``) for this deployment's curated tables,
    with the role of SF_REDSHIFT_IAM_ROLE."""
    role = validate_iam_role(settings.get("SF_REDSHIFT_IAM_ROLE"))
    catalog = catalog_from_settings()
    database = catalog.aliases[CURATED_ALIAS]
    tables = load_registry(Settings.from_env().tables_file).tables
    entries = [e for t in tables if (e := catalog.glue.get_table(t, database)) is not None and is_iceberg(e)]
    return spectrum_script(
        entries, glue_database=database, external_schema=external_schema or database,
        copy_schema=copy_schema, iam_role=role,
    )


def catalog_from_settings() -> Catalog:
    raw = settings.get("SF_GLUE_DATABASE")
    curated = curated_database(raw, settings.get("SF_GLUE_CURATED_DATABASE"))
    glue = GlueCatalog(
        region_name=settings.get("SF_AWS_REGION"),
        endpoint_url=settings.get("SF_AWS_ENDPOINT_URL") or None,
        aws_access_key_id=settings.get("SF_AWS_ACCESS_KEY_ID") or None,
        aws_secret_access_key=settings.get("SF_AWS_SECRET_ACCESS_KEY") or None,
        database=raw,
    )
    return Catalog(glue, raw, {RAW_ALIAS: raw, CURATED_ALIAS: curated})


def s3_filesystem_from_settings() -> pafs.S3FileSystem:
    return s3_filesystem(
        settings.get("SF_AWS_REGION"),
        settings.get("SF_AWS_ENDPOINT_URL"),
        settings.get("SF_AWS_ACCESS_KEY_ID"),
        settings.get("SF_AWS_SECRET_ACCESS_KEY"),
    )


def s3_filesystem(region: str, endpoint_url: str = "", key_id: str = "", secret: str = "") -> pafs.S3FileSystem:
    """pyarrow's S3 filesystem; a custom endpoint (the local moto server) keeps its scheme."""
    # A read may wait for the first byte longer than the SDK's 3 s on a busy local endpoint (moto builds
    # every range from the whole object).
    kwargs: dict = {"region": region, "request_timeout": S3_REQUEST_TIMEOUT_S}
    if endpoint_url:
        url = urlparse(endpoint_url)
        kwargs |= {"endpoint_override": url.netloc or url.path, "scheme": url.scheme or "https"}
    if key_id and secret:
        kwargs |= {"access_key": key_id, "secret_key": secret}
    return pafs.S3FileSystem(**kwargs)


def run_query(sql: str, catalog: Catalog, filesystem: pafs.FileSystem) -> pa.Table:
    """Resolve the tables ``sql`` names, register them in a fresh DuckDB, run it, return the result."""
    con = duckdb.connect(config=_DUCKDB_CONFIG)
    try:
        for number, parts in enumerate(referenced_tables(sql)):
            _register(con, catalog, filesystem, parts, f"__sf_table_{number}")
        # The query reads the catalog's tables and nothing else: no local files, no COPY TO, no ATTACH.
        con.execute("SET enable_external_access = false")
        con.execute("SET lock_configuration = true")
        try:
            relation = con.sql(sql)  # not execute(): its Arrow result is an extra copy of the rows
            return relation.to_arrow_table() if relation is not None else pa.table({})
        except (duckdb.Error, pa.ArrowException) as exc:
            raise QueryError(_explain(exc)) from None
    finally:
        con.close()


def referenced_tables(sql: str) -> list[tuple[str, ...]]:
    """The table names ``sql`` reads (CTEs excluded), each as its dotted parts."""
    try:
        names = duckdb.get_table_names(sql, qualified=True)
    except duckdb.Error as exc:
        raise QueryError(str(exc).strip()) from None
    return sorted({parse_name(n) for n in names})


def parse_name(text: str) -> tuple[str, ...]:
    """``raw.member AS m`` -> ("raw", "member"); ``"my db"."T"`` -> ("my db", "T"). Bare parts are
    lower-cased (SQL folds them; Glue names are lower case)."""
    parts, pos = [], 0
    while True:
        m = _NAME_PART.match(text, pos)
        if not m:
            raise QueryError(f"cannot read the table name {text!r}")
        quoted, bare = m.groups()
        parts.append(quoted.replace('""', '"') if quoted is not None else bare.lower())
        pos = m.end()
        if not text.startswith(".", pos):
            return tuple(parts)
        pos += 1


def _register(con, catalog: Catalog, filesystem: pafs.FileSystem, parts: tuple[str, ...], hidden: str) -> None:
    """The table as a view named like in the query, over its dataset registered as ``hidden``."""
    if len(parts) > 2:
        raise QueryError(f"{'.'.join(parts)}: name tables as <database>.<table> (or raw.<table>, curated.<table>)")
    schema, table = (None, parts[0]) if len(parts) == 1 else parts
    database = catalog.database(schema)
    entry = catalog.glue.get_table(table.lower(), database)
    if entry is None:
        raise QueryError(
            f"{'.'.join(parts)}: no table {table!r} in Glue database {database!r} "
            f"(name tables as {RAW_ALIAS}.<table>, {CURATED_ALIAS}.<table> or <glue database>.<table>)"
        )
    try:
        if is_iceberg(entry):
            dataset = iceberg_dataset(catalog.glue, database, entry["Name"], filesystem)
        else:
            dataset = table_dataset(entry, catalog.glue.partitions(entry["Name"], database), filesystem)
    except UnreadableTableError as exc:
        raise QueryError(str(exc)) from None
    con.register(hidden, dataset)
    target = _quote(table) if schema is None else f"{_quote(schema)}.{_quote(table)}"
    if schema is not None:
        con.execute(f"CREATE SCHEMA IF NOT EXISTS {_quote(schema)}")
    con.execute(f"CREATE OR REPLACE VIEW {target} AS SELECT * FROM {_quote(hidden)}")


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _explain(exc: Exception) -> str:
    text = str(exc).strip()
    if "CSV conversion error" in text or "CSV parse error" in text:
        return (
            f"{text}\nA raw file holds a value that does not fit its catalog type; query the curated table "
            "instead (such rows are quarantined there), or fix the registry's types."
        )
    return text


# ------------------------------------------------------------------------------------------ datasets


def is_iceberg(entry: Mapping) -> bool:
    return (entry.get("Parameters") or {}).get("table_type", "").upper() == "ICEBERG"


def iceberg_dataset(glue: GlueCatalog, database: str, name: str, filesystem: pafs.FileSystem) -> ds.Dataset:
    """A dataset over the data files of an Iceberg table's current snapshot, as pyiceberg plans them, in
    its current schema without the bookkeeping columns; each file carries its identity partition values."""
    from sf_platform.hub.catalog import iceberg_catalog
    from sf_platform.hub.changes import plain_schema

    table = iceberg_catalog(glue, _s3_settings()).load_table((database, name))
    schema = pa.schema([f for f in plain_schema(table) if f.name not in BOOKKEEPING])
    files = [task.file for task in table.scan().plan_files()] if table.current_snapshot() else []
    keys = [table.schema().find_field(f.source_id).name for f in table.spec().fields]
    paths, expressions = [], []
    for data_file in files:
        paths.append(_path(data_file.file_path))
        terms = [
            ds.field(key) == pa.scalar(data_file.partition[i], schema.field(key).type)
            for i, key in enumerate(keys)
        ]
        expressions.append(_all(terms))
    return ds.FileSystemDataset.from_paths(
        paths, schema=schema, format=_file_format(ReadSpec("parquet", schema, pa.schema([]), "")),
        filesystem=filesystem, partitions=expressions if keys else None,
    )


def _all(terms: list[ds.Expression]) -> ds.Expression:
    expression = ds.scalar(True)
    for term in terms:
        expression = expression & term
    return expression


def _s3_settings() -> dict[str, str]:
    return {
        "s3.region": settings.get("SF_AWS_REGION"),
        "s3.endpoint": settings.get("SF_AWS_ENDPOINT_URL"),
        "s3.access-key-id": settings.get("SF_AWS_ACCESS_KEY_ID"),
        "s3.secret-access-key": settings.get("SF_AWS_SECRET_ACCESS_KEY"),
    }


def table_dataset(entry: Mapping, partitions: Sequence[Mapping], filesystem: pafs.FileSystem) -> ds.Dataset:
    """A dataset over a catalog table's files: one fragment per file, with its partition's values."""
    spec = read_spec(entry)
    schema = pa.schema(list(spec.schema) + list(spec.partition_schema))
    if len(spec.partition_schema):
        paths, expressions = _partitioned_files(spec, partitions, filesystem)
    else:
        paths, expressions = _files(filesystem, spec.location), None
    return ds.FileSystemDataset.from_paths(
        paths, schema=schema, format=_file_format(spec), filesystem=filesystem, partitions=expressions
    )


def _files(filesystem: pafs.FileSystem, location: str) -> list[str]:
    """The data files under a location (hidden and bookkeeping files skipped), as filesystem paths."""
    base = _path(location)
    selector = pafs.FileSelector(base, recursive=True, allow_not_found=True)
    files = [
        info.path
        for info in filesystem.get_file_info(selector)
        if info.type == pafs.FileType.File and info.size and is_data_key(info.path[len(base) :].lstrip("/"))
    ]
    return sorted(files)


def _partitioned_files(
    spec: ReadSpec, partitions: Sequence[Mapping], filesystem: pafs.FileSystem
) -> tuple[list[str], list[ds.Expression]]:
    """Files of the catalog's partitions, each with its partition's values as an expression (files in
    folders the catalog does not list are not read, as in Athena)."""
    table_base = _path(spec.location).rstrip("/") + "/"
    listed = _files(filesystem, spec.location)
    paths, expressions = [], []
    for partition in partitions:
        folder = _path(partition["StorageDescriptor"]["Location"]).rstrip("/") + "/"
        files = _under(listed, folder) if folder.startswith(table_base) else _files(filesystem, folder)
        expression = _partition_expression(spec.partition_schema, partition["Values"])
        paths.extend(files)
        expressions.extend([expression] * len(files))
    return paths, expressions


def _under(paths: list[str], folder: str) -> list[str]:
    """The paths of sorted ``paths`` inside ``folder`` (a contiguous run)."""
    start = end = bisect.bisect_left(paths, folder)
    while end < len(paths) and paths[end].startswith(folder):
        end += 1
    return paths[start:end]


def _partition_expression(schema: pa.Schema, values: Sequence[str]) -> ds.Expression:
    expression = None
    for f, value in zip(schema, values, strict=True):
        term = ds.field(f.name) == pa.scalar(value, pa.string()).cast(f.type)
        expression = term if expression is None else expression & term
    return expression


def _path(location: str) -> str:
    url = urlparse(location)
    if url.scheme not in ("s3", "s3a", "s3n"):
        raise UnreadableTableError(f"location {location!r} is not in S3")
    return f"{url.netloc}{url.path}"


def _file_format(spec: ReadSpec) -> ds.FileFormat:
    if spec.format == "parquet":
        cache = pa.CacheOptions.from_network_metrics(S3_FIRST_BYTE_MS, S3_MIB_PER_S)
        options = ds.ParquetFragmentScanOptions(pre_buffer=True, cache_options=cache)
        return ds.ParquetFileFormat(default_fragment_scan_options=options)
    return ds.CsvFileFormat(
        read_options=pacsv.ReadOptions(
            column_names=spec.schema.names, skip_rows=spec.skip_rows, block_size=CSV_BLOCK_BYTES,
            encoding=spec.encoding.replace("-", ""),
        ),
        parse_options=pacsv.ParseOptions(
            delimiter=spec.delimiter, quote_char='"', double_quote=True,
            newlines_in_values=spec.quoted, invalid_row_handler=_skip_ragged_row,
        ),
        convert_options=pacsv.ConvertOptions(
            column_types=spec.schema, null_values=[""], strings_can_be_null=True, quoted_strings_can_be_null=True,
            true_values=_TRUE, false_values=_FALSE,
        ),
    )


def _skip_ragged_row(row) -> str:
    return "skip"  # as the crawl and the curated layer do: a row with the wrong number of fields is no row


# ------------------------------------------------------------------------------------------ output


def format_result(table: pa.Table, fmt: str = "table") -> str:
    """The result as an aligned text table, CSV (with a header) or a JSON array of objects."""
    rows = table.to_pylist()
    if fmt == "json":
        return json.dumps(rows, default=str, ensure_ascii=False, indent=1) + "\n"
    if fmt == "csv":
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(table.column_names)
        writer.writerows([["" if v is None else v for v in row.values()] for row in rows])
        return out.getvalue()
    if fmt != "table":
        raise ValueError(f"format must be one of {FORMATS}, not {fmt!r}")
    return _text_table(table, rows)


def _text_table(table: pa.Table, rows: list[dict]) -> str:
    names = table.column_names
    cells = [[("NULL" if v is None else str(v)) for v in row.values()] for row in rows]
    widths = [max([len(n), *(len(r[i]) for r in cells)]) for i, n in enumerate(names)]
    numeric = [pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_decimal(t) for t in table.schema.types]

    def line(values: list[str]) -> str:
        cells = (v.rjust(w) if num else v.ljust(w) for v, w, num in zip(values, widths, numeric, strict=True))
        return " | ".join(cells).rstrip()

    out = [line(names), "-+-".join("-" * w for w in widths), *(line(r) for r in cells)]
    out.append(f"({len(rows)} row{'s' if len(rows) != 1 else ''})")
    return "\n".join(out) + "\n"
