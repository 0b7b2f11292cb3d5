"""Glue catalog entries: crawler-like TableInput, registry overrides, schema change policy, round trips."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sf_platform.core import catalog
from sf_platform.core.catalog import (
    CatalogColumn,
    CrawlStats,
    SchemaDiff,
    apply_overrides,
    columns_of,
    decide_columns,
    diff_columns,
    partition_keys_of,
    source_to_catalog_names,
    table_input,
)
from sf_platform.core.inference import ColumnProfile, CsvFormat
from sf_platform.core.registry import TableConfig, UpdateBehavior

PLAIN = CsvFormat(delimiter=",", quoted=False, line_terminator="\n", compression="none", encoding="utf-8", header=True)
WINDOWS = CsvFormat(
    delimiter="|", quoted=True, line_terminator="\r\n", compression="gzip", encoding="cp949", header=False
)

COLUMNS = [
    CatalogColumn("member_id", "bigint", "MEMBER_ID", 4, "bigint", "bigint: all 10 values are integers"),
    CatalogColumn("member_name", "string", "MEMBER_NAME", 3, "string", "string: text"),
]


STATS = CrawlStats(object_count=2, size_bytes=1000, record_count=10)


def _table(fmt=PLAIN, stats=STATS, partition_keys=(), **extra) -> dict:
    return table_input(
        name="member",
        location="s3://bucket/member/",
        columns=COLUMNS,
        partition_keys=list(partition_keys),
        fmt=fmt,
        stats=stats,
        **extra,
    )


def _config(**settings) -> TableConfig:
    return TableConfig.model_validate(settings)


def _profile(name, type_, max_length=5, reason=None) -> ColumnProfile:
    return ColumnProfile(name, type_, reason or f"{type_}: inferred", 10, 0, max_length)


# ------------------------------------------------------------------------------------------ TableInput


def test_unquoted_csv_uses_lazy_simple_serde_with_field_delim():
    t = _table()
    sd = t["StorageDescriptor"]
    assert sd["SerdeInfo"] == {"SerializationLibrary": catalog.LAZY_SIMPLE_SERDE, "Parameters": {"field.delim": ","}}
    assert sd["InputFormat"] == "org.apache.hadoop.mapred.TextInputFormat"
    assert sd["OutputFormat"] == "org.apache.hadoop.hive.ql.io.HiveIgnoreKeyTextOutputFormat"
    assert sd["Location"] == "s3://bucket/member/"
    assert sd["Compressed"] is False
    assert t["TableType"] == "EXTERNAL_TABLE"
    assert t["Name"] == "member"


def test_crawler_parameters():
    params = _table()["Parameters"]
    assert params["classification"] == "csv"
    assert params["delimiter"] == ","
    assert params["skip.header.line.count"] == "1"
    assert params["compressionType"] == "none"
    assert params["typeOfData"] == "file"
    assert params["areColumnsQuoted"] == "false"
    assert params["columnsOrdered"] == "true"
    assert params["objectCount"] == "2"
    assert params["sizeKey"] == "1000"
    assert params["recordCount"] == "10"
    assert params["averageRecordSize"] == "100"
    assert params[catalog.P_ENCODING] == "utf-8"
    assert params[catalog.P_HEADER] == "present"
    assert json.loads(params[catalog.P_LINE_TERMINATOR]) == "\n"


def test_quoted_cp949_gzip_headerless_file():
    t = _table(fmt=WINDOWS, stats=CrawlStats(1, 12345, 3))
    sd = t["StorageDescriptor"]
    assert sd["SerdeInfo"] == {
        "SerializationLibrary": catalog.OPEN_CSV_SERDE,
        "Parameters": {"separatorChar": "|", "quoteChar": '"', "escapeChar": "\\", "serialization.encoding": "MS949"},
    }
    params = t["Parameters"]
    assert params["skip.header.line.count"] == "0"
    assert params["areColumnsQuoted"] == "true"
    assert params["compressionType"] == "gzip"
    assert params["delimiter"] == "|"
    assert params["recordCount"] == "3"
    assert params["averageRecordSize"] == "4115"
    assert params[catalog.P_HEADER] == "absent"
    assert params[catalog.P_ENCODING] == "cp949"
    assert json.loads(params[catalog.P_LINE_TERMINATOR]) == "\r\n"
    assert sd["Compressed"] is True


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig"])
def test_utf8_files_declare_no_serialization_encoding(encoding):
    for quoted in (False, True):
        fmt = CsvFormat(",", quoted, "\n", "none", encoding, True)
        assert "serialization.encoding" not in _table(fmt=fmt)["StorageDescriptor"]["SerdeInfo"]["Parameters"]


def test_tab_delimited_file():
    fmt = CsvFormat("\t", False, "\n", "none", "utf-8", True)
    assert _table(fmt=fmt)["StorageDescriptor"]["SerdeInfo"]["Parameters"] == {"field.delim": "\t"}


def test_record_count_is_exact_and_empty_tables_have_no_average():
    assert _table(stats=CrawlStats(3, 1_000_001, 999_999))["Parameters"]["recordCount"] == "999999"
    params = _table(stats=CrawlStats(1, 50, 0))["Parameters"]
    assert params["recordCount"] == "0" and params["averageRecordSize"] == "0"


def test_partition_keys_are_strings_in_order():
    t = _table(partition_keys=["dt", "region"])
    assert t["PartitionKeys"] == [{"Name": "dt", "Type": "string"}, {"Name": "region", "Type": "string"}]
    assert partition_keys_of(t) == ["dt", "region"]
    assert partition_keys_of({"StorageDescriptor": {"Columns": []}}) == []


def test_storage_descriptor_repeats_the_table_parameters():
    t = _table(extra_parameters={"sf.crawled_at": "2025-08-29T15:11:00"})
    assert t["Parameters"]["sf.crawled_at"] == "2025-08-29T15:11:00"
    assert t["StorageDescriptor"]["Parameters"] == t["Parameters"]
    assert t["StorageDescriptor"]["Parameters"] is not t["Parameters"]


def test_every_parameter_value_is_a_string():
    # Glue's API rejects non-string parameter values.
    t = _table(fmt=WINDOWS)
    maps = [t["Parameters"], t["StorageDescriptor"]["Parameters"], t["StorageDescriptor"]["SerdeInfo"]["Parameters"]]
    maps += [c["Parameters"] for c in t["StorageDescriptor"]["Columns"]]
    for mapping in maps:
        assert all(isinstance(k, str) and isinstance(v, str) for k, v in mapping.items())


def test_columns_round_trip_through_the_table_input():
    assert columns_of(_table()) == COLUMNS


# ------------------------------------------------------------------------------------------ columns


def test_catalog_column_to_glue():
    column = CatalogColumn("score", "decimal(5,2)", "SCORE", 6, "double", "why", "type set by registry")
    assert column.to_glue() == {
        "Name": "score",
        "Type": "decimal(5,2)",
        "Comment": "why",
        "Parameters": {
            catalog.P_SOURCE_NAME: "SCORE",
            catalog.P_MAX_LENGTH: "6",
            catalog.P_INFERRED: "double",
            catalog.P_OVERRIDE: "type set by registry",
            catalog.P_REASON: "why",
        },
    }


def test_the_whole_reason_is_kept_in_a_parameter():
    column = CatalogColumn("c", "string", reason="y" * 600)
    glue = column.to_glue()
    assert glue["Parameters"][catalog.P_REASON] == "y" * 600
    assert CatalogColumn.from_glue(glue).reason == "y" * 600


def test_a_crawler_made_column_reads_with_defaults():
    column = CatalogColumn.from_glue({"Name": "r_name", "Type": "string"})
    assert column == CatalogColumn("r_name", "string", source_name="r_name")


def test_long_reasons_are_cut_to_glues_comment_limit():
    column = CatalogColumn("c", "string", reason="x" * 1000)
    assert len(column.to_glue()["Comment"]) == 255


text = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=40)


@given(
    st.builds(
        CatalogColumn,
        name=text.filter(bool),
        type=st.sampled_from(["bigint", "string", "decimal(12,2)", "date"]),
        source_name=text,
        max_length=st.integers(0, 10**9),
        inferred_type=text,
        reason=st.text(max_size=255),
        override=text,
    )
)
def test_catalog_column_round_trips_through_glue(column):
    assert CatalogColumn.from_glue(column.to_glue()) == column


# ------------------------------------------------------------------------------------------ overrides


def test_source_names_are_normalized_then_renamed():
    config = _config(renames={"member_nm": "member_name"})
    assert source_to_catalog_names(["MEMBER_ID", "MEMBER NM", "order"], config) == [
        "member_id",
        "member_name",
        "order_",
    ]


def test_apply_overrides_renames_forces_strings_and_sets_types():
    profiles = [
        _profile("MEMBER_ID", "int", 4),
        _profile("Member Nm", "string", 3),
        _profile("PHONE", "bigint", 11, "bigint: all 10 values are integers"),
        _profile("SCORE", "double", 6),
    ]
    config = _config(renames={"member_nm": "member_name"}, force_string=["phone"], types={"score": "DECIMAL(5, 2)"})
    columns = {c.name: c for c in apply_overrides(profiles, config)}
    assert list(columns) == ["member_id", "member_name", "phone", "score"]

    assert columns["member_id"] == CatalogColumn("member_id", "int", "MEMBER_ID", 4, "int", "int: inferred", "")
    assert columns["member_name"].source_name == "Member Nm"
    assert columns["member_name"].type == "string"

    phone = columns["phone"]
    assert (phone.type, phone.inferred_type, phone.max_length) == ("string", "bigint", 11)
    assert phone.override == "forced to string by registry"
    assert "inferred bigint" in phone.reason and "all 10 values are integers" in phone.reason

    score = columns["score"]
    assert score.type == "decimal(5,2)"  # canonical spelling
    assert score.override == "type set by registry"
    assert score.inferred_type == "double"


def test_an_override_keeps_what_was_inferred_but_claims_no_quarantine():
    """The inferred reason says the misfits are quarantined, which holds for the inferred type only:
    under force_string every value is kept, under a registry type conversion decides."""
    import io

    from sf_platform.core.inference import profile_stream

    data = b"id,n\n" + b"".join(b"%d,%d\n" % (i, i) for i in range(200)) + b"201,N/A\n202,x\n"
    (_, n) = profile_stream(io.BytesIO(data), tolerance=0.05).columns
    assert (n.type, "are quarantined" in n.reason) == ("int", True)  # the crawl's own verdict

    (_, forced) = apply_overrides([_profile("ID", "int"), n], _config(force_string=["n"]))
    assert (forced.type, forced.inferred_type) == ("string", "int")
    assert forced.reason == (
        "forced to string by registry (inferred int, which 2 of 202 values did not fit: 'N/A', 'x')"
    )
    (_, typed) = apply_overrides([_profile("ID", "int"), n], _config(types={"n": "decimal(10,2)"}))
    assert typed.reason == "type set by registry (inferred int, which 2 of 202 values did not fit: 'N/A', 'x')"
    (_, kept) = apply_overrides([_profile("ID", "int"), n], _config())
    assert kept.reason == n.reason  # no override: the crawl's reason, quarantine claim and all


def test_force_string_true_forces_every_non_string_column():
    profiles = [_profile("A", "int"), _profile("B", "string"), _profile("C", "date")]
    columns = apply_overrides(profiles, _config(force_string=True))
    assert [c.type for c in columns] == ["string", "string", "string"]
    assert [bool(c.override) for c in columns] == [True, False, True]  # B was a string already
    assert [c.inferred_type for c in columns] == ["int", "string", "date"]


def test_force_string_uses_the_renamed_name():
    profiles = [_profile("TEL", "bigint")]
    columns = apply_overrides(profiles, _config(renames={"tel": "phone"}, force_string=["phone"]))
    assert (columns[0].name, columns[0].type) == ("phone", "string")


def test_registry_type_wins_over_force_string():
    columns = apply_overrides([_profile("N", "string")], _config(force_string=True, types={"n": "bigint"}))
    assert (columns[0].type, columns[0].override) == ("bigint", "type set by registry")


def test_no_overrides_keeps_the_inferred_types():
    profiles = [_profile("A", "int"), _profile("B", "timestamp")]
    columns = apply_overrides(profiles, _config())
    assert [(c.name, c.type, c.override) for c in columns] == [("a", "int", ""), ("b", "timestamp", "")]


def test_renames_cannot_create_duplicate_catalog_names():
    config = _config(renames={"member_nm": "member_id"})
    with pytest.raises(ValueError, match="member_id"):
        source_to_catalog_names(["MEMBER_ID", "MEMBER_NM"], config)


# ------------------------------------------------------------------------------------------ policy


def _col(name, type_, max_length=5):
    return CatalogColumn(name, type_, name.upper(), max_length, type_, f"{type_}: seen")


EXISTING = [_col("a", "int", 5), _col("b", "string", 10)]


def _policy(behavior: UpdateBehavior) -> TableConfig:
    return _config(schema_change={"update_behavior": behavior.value})


@pytest.mark.parametrize("behavior", list(UpdateBehavior))
def test_first_crawl_writes_the_crawled_columns(behavior):
    crawled = [_col("a", "int")]
    decision = decide_columns(None, crawled, _policy(behavior))
    assert decision.applied
    assert decision.columns == tuple(crawled)
    assert decision.diff == SchemaDiff(added=("a",))


@pytest.mark.parametrize("behavior", list(UpdateBehavior))
def test_unchanged_schema_refreshes_statistics(behavior):
    crawled = [_col("a", "int", 9), _col("b", "string", 30)]
    decision = decide_columns(EXISTING, crawled, _policy(behavior))
    assert decision.applied and decision.diff.empty
    assert [c.max_length for c in decision.columns] == [9, 30]


def test_update_in_database_takes_the_crawl():
    crawled = [_col("a", "bigint"), _col("c", "date")]
    decision = decide_columns(EXISTING, crawled, _policy(UpdateBehavior.UPDATE_IN_DATABASE))
    assert decision.applied
    assert decision.columns == tuple(crawled)
    assert decision.diff == SchemaDiff(added=("c",), removed=("b",), retyped=(("a", "int", "bigint"),))


def test_merge_new_columns_adds_but_never_changes_or_drops():
    crawled = [_col("a", "bigint", 12), _col("c", "date", 10)]
    decision = decide_columns(EXISTING, crawled, _policy(UpdateBehavior.MERGE_NEW_COLUMNS))
    assert decision.applied
    assert [(c.name, c.type) for c in decision.columns] == [("a", "int"), ("b", "string"), ("c", "date")]
    a = decision.columns[0]
    assert a.max_length == 12  # statistics still refreshed
    assert a.inferred_type == "bigint"
    assert decision.columns[1] == EXISTING[1]  # not seen by the crawl: kept as is
    assert any("a" in note and "int" in note and "bigint" in note for note in decision.notes)
    assert decision.diff.as_dict() == {"added": ["c"], "removed": ["b"], "retyped": ["a: int -> bigint"]}


def test_merge_new_columns_never_shrinks_max_length():
    crawled = [_col("a", "bigint", 1), _col("b", "string", 2), _col("c", "date")]
    decision = decide_columns(EXISTING, crawled, _policy(UpdateBehavior.MERGE_NEW_COLUMNS))
    assert [c.max_length for c in decision.columns[:2]] == [5, 10]


def test_merge_new_columns_with_nothing_new_keeps_the_types_but_refreshes_statistics():
    crawled = [_col("a", "bigint", 40), _col("b", "string")]
    decision = decide_columns(EXISTING, crawled, _policy(UpdateBehavior.MERGE_NEW_COLUMNS))
    assert decision.applied  # so recordCount and max lengths stay current
    assert [c.type for c in decision.columns] == ["int", "string"]
    assert decision.columns[0].max_length == 40


def test_merge_new_columns_still_applies_registry_overrides():
    forced = CatalogColumn("a", "string", "A", 5, "bigint", "forced to string by registry (...)", "forced to string by registry")
    decision = decide_columns(EXISTING, [forced, _col("b", "string")], _policy(UpdateBehavior.MERGE_NEW_COLUMNS))
    a = decision.columns[0]
    assert (a.type, a.override) == ("string", "forced to string by registry")
    assert not decision.notes  # an override is no schema drift to report


def test_log_only_logs():
    crawled = [_col("a", "bigint"), _col("c", "date")]
    decision = decide_columns(EXISTING, crawled, _policy(UpdateBehavior.LOG))
    assert not decision.applied
    assert decision.columns == tuple(EXISTING)
    assert not decision.diff.empty
    assert decision.notes and "LOG" in decision.notes[0]


def test_diff_columns():
    assert diff_columns(EXISTING, EXISTING).empty
    diff = diff_columns(EXISTING, [_col("b", "string"), _col("a", "int")])
    assert diff.empty  # order alone is no schema change
    assert SchemaDiff().as_dict() == {"added": [], "removed": [], "retyped": []}


# ------------------------------------------------------------------------------------------ merging


def _existing_entry() -> dict:
    """An entry as GetTable returns it after a person edited it in the console."""
    entry = _table()
    entry.update({"DatabaseName": "db", "CreateTime": "2025-01-01", "VersionId": "3", "CatalogId": "1"})
    entry["Description"] = "Members, curated by the data team"
    entry["Owner"] = "data-team"
    entry["Parameters"] = {**entry["Parameters"], "team": "growth", "recordCount": "1", "DEPRECATED_BY_CRAWLER": "true"}
    sd = entry["StorageDescriptor"]
    sd["Parameters"] = {**sd["Parameters"], "projection.enabled": "false"}
    sd["SerdeInfo"]["Parameters"]["serialization.null.format"] = "\\N"
    sd["Columns"][0]["Comment"] = "Member number, never reused"
    sd["Columns"][0]["Parameters"]["pii"] = "false"
    return entry


def test_merge_keeps_what_we_do_not_manage():
    merged = catalog.merge_table_input(_existing_entry(), _table())
    assert merged["Description"] == "Members, curated by the data team"
    assert merged["Owner"] == "data-team"
    assert merged["Parameters"]["team"] == "growth"
    assert merged["StorageDescriptor"]["Parameters"]["projection.enabled"] == "false"
    assert merged["StorageDescriptor"]["SerdeInfo"]["Parameters"] == {"field.delim": ",", "serialization.null.format": "\\N"}
    member_id = merged["StorageDescriptor"]["Columns"][0]
    assert member_id["Comment"] == "Member number, never reused"  # written by a person
    assert member_id["Parameters"]["pii"] == "false"
    assert member_id["Parameters"][catalog.P_REASON] == COLUMNS[0].reason
    assert set(merged) <= set(catalog.TABLE_INPUT_KEYS)  # VersionId, CreateTime ... cannot be written


def test_merge_takes_what_we_manage():
    merged = catalog.merge_table_input(_existing_entry(), _table(stats=CrawlStats(2, 1000, 10)))
    assert merged["Parameters"]["recordCount"] == "10"
    assert "DEPRECATED_BY_CRAWLER" not in merged["Parameters"]  # the data is back
    member_name = merged["StorageDescriptor"]["Columns"][1]
    assert member_name["Comment"] == COLUMNS[1].reason  # our own comment follows the crawl


def test_merge_drops_managed_serde_parameters_the_crawl_no_longer_sets():
    old = _table(fmt=WINDOWS)
    merged = catalog.merge_table_input(old, _table())
    serde = merged["StorageDescriptor"]["SerdeInfo"]
    assert serde == {"SerializationLibrary": catalog.LAZY_SIMPLE_SERDE, "Parameters": {"field.delim": ","}}


def test_merge_uses_the_registry_description_only_for_an_entry_without_one():
    managed = _table(description="From the registry")
    assert catalog.merge_table_input(None, managed)["Description"] == "From the registry"
    assert catalog.merge_table_input(_table(), managed)["Description"] == "From the registry"
    assert catalog.merge_table_input(_existing_entry(), managed)["Description"] == "Members, curated by the data team"


def test_an_unchanged_crawl_is_the_same_entry():
    existing = _existing_entry()
    merged = catalog.merge_table_input(existing, _table())
    assert not catalog.same_entry(catalog.as_table_input(existing), merged)  # recordCount, deprecation
    again = catalog.merge_table_input({**merged, "VersionId": "4"}, _table())
    assert catalog.same_entry(catalog.as_table_input({**merged, "VersionId": "4"}), again)


def test_same_entry_ignores_empty_values():
    assert catalog.same_entry({"a": {"b": {}, "c": 1}, "d": []}, {"a": {"c": 1}})
    assert not catalog.same_entry({"a": [1, 2]}, {"a": [2, 1]})


def test_deprecation_marks_once():
    entry = _table()
    marked = catalog.deprecated_input({**entry, "VersionId": "1"})
    assert marked["Parameters"][catalog.DEPRECATED] == "true"
    assert "VersionId" not in marked
    assert catalog.deprecated_input(marked) is None


def test_partition_input_is_the_table_at_the_partition_folder_with_its_own_counts():
    table = catalog.merge_table_input(_existing_entry(), _table(partition_keys=["dt"]))
    part = catalog.partition_input(["2024-01-01"], "s3://bucket/member/dt=2024-01-01/", table, CrawlStats(1, 300, 3))
    assert part["Values"] == ["2024-01-01"]
    sd = part["StorageDescriptor"]
    assert sd["Location"] == "s3://bucket/member/dt=2024-01-01/"
    assert sd["Columns"] == [{"Name": "member_id", "Type": "bigint"}, {"Name": "member_name", "Type": "string"}]
    assert sd["SerdeInfo"] == table["StorageDescriptor"]["SerdeInfo"]
    assert part["Parameters"]["recordCount"] == "3" and part["Parameters"]["objectCount"] == "1"
    assert part["Parameters"]["classification"] == "csv"
    assert "team" not in part["Parameters"]  # table-level hand edits stay on the table
    assert sd["Parameters"]["recordCount"] == "3"


def test_ragged_rows_are_counted_in_record_count_and_shown_apart():
    params = _table(stats=CrawlStats(1, 100, 10, ragged_rows=2))["Parameters"]
    assert (params["recordCount"], params[catalog.P_RAGGED_ROWS]) == ("10", "2")
    assert catalog.P_RAGGED_ROWS not in _table(stats=CrawlStats(1, 100, 10))["Parameters"]
    # A partition shows its own ragged rows, never the table's.
    table = _table(partition_keys=["dt"], stats=CrawlStats(2, 200, 10, ragged_rows=2))
    clean = catalog.partition_input(["1"], "s3://bucket/t/dt=1/", table, CrawlStats(1, 100, 5))
    ragged = catalog.partition_input(["2"], "s3://bucket/t/dt=2/", table, CrawlStats(1, 100, 5, ragged_rows=2))
    assert catalog.P_RAGGED_ROWS not in clean["Parameters"]
    assert catalog.P_RAGGED_ROWS not in clean["StorageDescriptor"]["Parameters"]
    assert ragged["Parameters"][catalog.P_RAGGED_ROWS] == "2"
    # Managed: a recrawl without ragged rows removes it.
    merged = catalog.merge_table_input({**table, "VersionId": "1"}, _table(partition_keys=["dt"]))
    assert catalog.P_RAGGED_ROWS not in merged["Parameters"]
    assert catalog.P_RAGGED_ROWS not in catalog.merge_partition_input(ragged, clean)["Parameters"]


def test_explain_columns_is_a_markdown_table():
    text = catalog.explain_columns([CatalogColumn("a|b", "int", "A", 1, "bigint", "why\nnot", "type set by registry")])
    assert text.splitlines()[2] == "| a/b | int | bigint | type set by registry | why not |"
