"""The table registry: strict validation with the file, table and key in every error."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from sf_platform.core.naming import DEFAULT_LOOSE_FILE_PATTERN, classify_loose_key
from sf_platform.core.registry import (
    DeleteBehavior,
    RegistryError,
    UpdateBehavior,
    load_registry,
    parse_registry,
)

REPO_TABLES = Path(__file__).resolve().parents[2] / "tables.yaml"

VALID = """
landing:
  loose_file_pattern: '^(?P<table>[A-Za-z_]+?)_(?P<ts>\\d{12})\\.csv$'
defaults:
  header: auto
  schema_change:
    update_behavior: MERGE_NEW_COLUMNS
    delete_behavior: LOG
tables:
  member:
    description: Members.
    renames: {member_nm: member_name}
    types: {score: "decimal(5,2)", joined_at: timestamp}
    force_string: [phone]
  psy_ord_class:
    header: absent
    columns: [class_id, school_code]
    force_string: true
    targets: [mysql]
    mysql: {on_incompatible_change: rebuild}
  psy_target_detail:
    snowflake: {write_mode: merge, merge_keys: [target_id]}
    schema_change: {update_behavior: LOG, delete_behavior: DELETE_FROM_DATABASE}
  region:
"""


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "tables.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def _error(raw, source: str = "reg.yaml") -> str:
    with pytest.raises(RegistryError) as excinfo:
        parse_registry(raw, source=source)
    return str(excinfo.value)


def test_valid_file(tmp_path):
    path = _write(tmp_path, VALID)
    registry = load_registry(path)
    assert registry.source == str(path)
    assert sorted(registry.tables) == ["member", "psy_ord_class", "psy_target_detail", "region"]

    member = registry.table("member")
    assert member.description == "Members."
    assert member.renames == {"member_nm": "member_name"}
    assert member.types == {"score": "decimal(5,2)", "joined_at": "timestamp"}
    assert member.forces_string("phone") and not member.forces_string("member_id")
    assert member.targets == ("mysql", "snowflake")
    assert member.snowflake.write_mode == "append"
    assert member.mysql.on_incompatible_change == "fail"

    classes = registry.table("psy_ord_class")
    assert classes.header == "absent"
    assert classes.columns == ("class_id", "school_code")
    assert classes.forces_string("anything")
    assert classes.targets == ("mysql",)
    assert classes.mysql.on_incompatible_change == "rebuild"

    detail = registry.table("psy_target_detail")
    assert detail.snowflake.write_mode == "merge"
    assert detail.snowflake.merge_keys == ("target_id",)
    assert detail.schema_change.update_behavior is UpdateBehavior.LOG
    assert detail.schema_change.delete_behavior is DeleteBehavior.DELETE_FROM_DATABASE

    assert registry.landing.loose_file_pattern.startswith("^(?P<table>[A-Za-z_]+?)")


def test_defaults_are_merged_into_every_table(tmp_path):
    registry = load_registry(_write(tmp_path, VALID))
    # region sets nothing: everything comes from defaults (or the model's defaults)
    region = registry.table("region")
    assert region.header == "auto"
    assert region.schema_change.update_behavior is UpdateBehavior.MERGE_NEW_COLUMNS
    assert registry.table("member").schema_change.update_behavior is UpdateBehavior.MERGE_NEW_COLUMNS
    # a table's own setting wins over the default
    assert registry.table("psy_ord_class").header == "absent"


def test_defaults_nested_settings_are_merged_key_by_key():
    # A table overriding one key of schema_change keeps the other from defaults.
    registry = parse_registry(
        {
            "defaults": {"schema_change": {"update_behavior": "LOG", "delete_behavior": "LOG"}},
            "tables": {"member": {"schema_change": {"delete_behavior": "DELETE_FROM_DATABASE"}}},
        }
    )
    policy = registry.table("member").schema_change
    assert policy.delete_behavior is DeleteBehavior.DELETE_FROM_DATABASE
    assert policy.update_behavior is UpdateBehavior.LOG


def test_minimal_registry_gets_model_defaults():
    registry = parse_registry({"tables": {"member": None}})
    member = registry.table("member")
    assert member.header == "auto"
    assert member.targets == ("mysql", "snowflake")
    assert member.schema_change.update_behavior is UpdateBehavior.UPDATE_IN_DATABASE
    assert member.schema_change.delete_behavior is DeleteBehavior.LOG
    assert registry.landing.loose_file_pattern == DEFAULT_LOOSE_FILE_PATTERN
    assert not member.forces_string("x")
    assert registry.source == "<memory>"


def test_the_repository_tables_yaml_is_valid_and_lists_the_demo_tables():
    registry = load_registry(REPO_TABLES)
    assert {"member", "school_info", "psy_ord_class", "psy_target_detail", "region"} <= set(registry.tables)
    assert registry.table("psy_ord_class").header == "absent"
    assert classify_loose_key("PSY_ORD_CLASS_202508291511.csv", registry.landing.loose_file_pattern).table == (
        "psy_ord_class"
    )


@pytest.mark.parametrize(
    "settings, key",
    [
        ({"bogus": 1}, "'bogus'"),
        ({"snowflake": {"write_mod": "merge"}}, "'snowflake.write_mod'"),
        ({"schema_change": {"update": "LOG"}}, "'schema_change.update'"),
        ({"mysql": {"rebuild": True}}, "'mysql.rebuild'"),
    ],
)
def test_unknown_key_error_names_file_table_and_key(settings, key):
    message = _error({"tables": {"region": {}, "member": settings}})
    assert message.startswith("reg.yaml:")
    assert "'member'" in message
    assert key in message
    assert "unknown key" in message


def test_unknown_key_in_a_file_names_the_path(tmp_path):
    path = _write(tmp_path, "tables:\n  member:\n    descripton: typo\n")
    with pytest.raises(RegistryError) as excinfo:
        load_registry(path)
    message = str(excinfo.value)
    assert str(path) in message and "'member'" in message and "'descripton'" in message


def test_unknown_top_level_key():
    message = _error({"tables": {"member": {}}, "table": {}})
    assert "reg.yaml" in message and "'table'" in message


@pytest.mark.parametrize("name", ["Member", "1member", "member-x", "a b", "x" * 65, "회원", 123])
def test_bad_table_name(name):
    message = _error({"tables": {name: {}}})
    assert "reg.yaml" in message and repr(name) in message


def test_merge_without_merge_keys_fails():
    message = _error({"tables": {"member": {"snowflake": {"write_mode": "merge"}}}})
    assert "'member'" in message and "merge_keys" in message


def test_merge_keys_from_defaults_satisfy_merge():
    registry = parse_registry(
        {"defaults": {"snowflake": {"write_mode": "merge", "merge_keys": ["id"]}}, "tables": {"member": {}}}
    )
    assert registry.table("member").snowflake.merge_keys == ("id",)


@pytest.mark.parametrize("bad_type", ["varchar(10)", "decimal(40,2)", "integer", "", "decimal(5,6)"])
def test_bad_type_string_fails_naming_the_column(bad_type):
    message = _error({"tables": {"member": {"types": {"score": bad_type}}}})
    assert "'member'" in message and "'types'" in message
    assert "'score'" in message
    assert repr(bad_type) in message


def test_type_strings_in_any_case_are_accepted():
    registry = parse_registry({"tables": {"member": {"types": {"score": "DECIMAL(5, 2)", "n": "BIGINT"}}}})
    assert registry.table("member").types["score"] == "DECIMAL(5, 2)"


@pytest.mark.parametrize(
    "settings, key",
    [
        ({"header": "yes"}, "'header'"),
        ({"targets": ["postgres"]}, "'targets.0'"),
        ({"force_string": "phone"}, "force_string"),
        ({"schema_change": {"update_behavior": "DROP"}}, "'schema_change.update_behavior'"),
        ({"snowflake": {"write_mode": "upsert"}}, "'snowflake.write_mode'"),
        ({"mysql": {"on_incompatible_change": "drop"}}, "'mysql.on_incompatible_change'"),
        ({"columns": "a,b"}, "'columns'"),
    ],
)
def test_bad_values_fail_naming_the_key(settings, key):
    message = _error({"tables": {"member": settings}})
    assert "'member'" in message and key in message


def test_loose_file_pattern_needs_a_table_group():
    message = _error({"landing": {"loose_file_pattern": r"^(?P<name>[A-Z_]+)_\d{12}\.csv$"}, "tables": {"m": {}}})
    assert "reg.yaml" in message and "landing" in message and "loose_file_pattern" in message
    assert "(?P<table>" in message


def test_loose_file_pattern_must_compile():
    message = _error({"landing": {"loose_file_pattern": "(?P<table>[A-Z"}, "tables": {"m": {}}})
    assert "loose_file_pattern" in message and "regular expression" in message


def test_unknown_landing_key():
    message = _error({"landing": {"pattern": "x"}, "tables": {"m": {}}})
    assert "landing" in message and "'pattern'" in message


@pytest.mark.parametrize(
    "raw, fragment",
    [
        ([], "mapping"),
        ("tables", "mapping"),
        (None, "mapping"),
        ({}, "'tables'"),
        ({"tables": {}}, "'tables'"),
        ({"tables": ["member"]}, "'tables'"),
        ({"tables": {"member": {}}, "defaults": ["x"]}, "'defaults'"),
    ],
)
def test_registry_shape_errors(raw, fragment):
    message = _error(raw)
    assert message.startswith("reg.yaml:") and fragment in message


def test_missing_file_error_mentions_sf_tables_file(tmp_path):
    missing = tmp_path / "nope.yaml"
    with pytest.raises(RegistryError) as excinfo:
        load_registry(missing)
    assert str(missing) in str(excinfo.value)
    assert "SF_TABLES_FILE" in str(excinfo.value)


def test_invalid_yaml_names_the_file(tmp_path):
    path = _write(tmp_path, "tables:\n  member: [\n")
    with pytest.raises(RegistryError) as excinfo:
        load_registry(path)
    assert str(path) in str(excinfo.value) and "YAML" in str(excinfo.value)


def test_empty_file_is_an_error(tmp_path):
    with pytest.raises(RegistryError):
        load_registry(_write(tmp_path, ""))


def test_rename_targets_must_be_valid_column_names():
    with pytest.raises(RegistryError) as exc:
        parse_registry({"tables": {"member": {"renames": {"member_nm": "Member Name"}}}})
    assert "'member'" in str(exc.value) and "renames" in str(exc.value) and "'member_name'" in str(exc.value)


def test_registry_is_immutable():
    registry = parse_registry({"tables": {"member": {}}})
    with pytest.raises(ValidationError):
        registry.table("member").header = "absent"


def test_encoding_is_optional_and_checked_against_python_codecs():
    assert parse_registry({"tables": {"member": {}}}).table("member").encoding == ""
    registry = parse_registry({"defaults": {"encoding": "CP949"}, "tables": {"member": {}, "region": {"encoding": "latin-1"}}})
    assert (registry.table("member").encoding, registry.table("region").encoding) == ("cp949", "iso8859-1")
    with pytest.raises(RegistryError) as exc:
        parse_registry({"tables": {"member": {"encoding": "utf8mb4"}}})
    assert "'member'" in str(exc.value) and "encoding" in str(exc.value) and "unknown encoding" in str(exc.value)
    for unsupported in ("utf-16", "utf-32-le", "iso2022_kr", "hex"):
        with pytest.raises(RegistryError, match="not supported"):
            parse_registry({"tables": {"member": {"encoding": unsupported}}})


def test_owners_and_tags_are_checked_where_the_ui_would_refuse_them():
    ok = parse_registry({"tables": {"t": {"owners": ["team:data", "a@b.kr"], "tags": {"domain": "assessment"}}}})
    assert ok.tables["t"].owners == ("team:data", "a@b.kr")
    assert ok.tables["t"].tags == {"domain": "assessment"}
    for bad in ({"owners": ["data team"]}, {"tags": {"domain": "school data"}}, {"tags": {"table": "x"}}):
        with pytest.raises(RegistryError) as error:
            parse_registry({"tables": {"t": bad}})
        assert "t" in str(error.value) and next(iter(bad)) in str(error.value)


def test_type_tolerance_defaults_to_one_percent_and_is_a_share_below_one_half():
    registry = parse_registry({"defaults": {"type_tolerance": 0.05}, "tables": {"a": {}, "b": {"type_tolerance": 0}}})
    assert (registry.table("a").type_tolerance, registry.table("b").type_tolerance) == (0.05, 0.0)
    assert parse_registry({"tables": {"c": {}}}).table("c").type_tolerance == 0.01
    assert parse_registry({"tables": {"c": {"type_tolerance": 0.49}}}).table("c").type_tolerance == 0.49
    for bad in (0.5, 1, -0.01, "1%", True, None, float("nan"), float("inf")):
        with pytest.raises(RegistryError) as error:
            parse_registry({"tables": {"scores": {"type_tolerance": bad}}})
        message = str(error.value)
        assert "'scores'" in message and "type_tolerance" in message and "below 0.5" in message, bad
