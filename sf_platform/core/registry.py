"""The table registry: one YAML file saying which tables exist and how each is treated.

Loaded without any network call (definitions are built from it), validated strictly: an unknown key,
a bad value or a bad table name fails with the file, the table and the key in the message.
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Mapping
from enum import StrEnum
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from . import types as glue_types
from .identifiers import IdentifierError, normalize_name, validate_table_name
from .naming import DEFAULT_LOOSE_FILE_PATTERN


class RegistryError(ValueError):
    """The registry file is missing or invalid; the message names the file, table and key."""


class UpdateBehavior(StrEnum):
    LOG = "LOG"
    UPDATE_IN_DATABASE = "UPDATE_IN_DATABASE"
    MERGE_NEW_COLUMNS = "MERGE_NEW_COLUMNS"  # add new columns, never change or drop existing ones


class DeleteBehavior(StrEnum):
    LOG = "LOG"
    DEPRECATE_IN_DATABASE = "DEPRECATE_IN_DATABASE"
    DELETE_FROM_DATABASE = "DELETE_FROM_DATABASE"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SchemaChangePolicy(_Strict):
    update_behavior: UpdateBehavior = UpdateBehavior.UPDATE_IN_DATABASE
    delete_behavior: DeleteBehavior = DeleteBehavior.LOG


class MySQLTarget(_Strict):
    # What to do when the catalog changes a column in a way MySQL cannot widen in place.
    on_incompatible_change: Literal["fail", "rebuild"] = "fail"


# A qualified Snowflake object name as users write it: 1 to 3 dot-separated unquoted identifiers.
_SNOWFLAKE_OBJECT = re.compile(r"^[A-Za-z_][A-Za-z0-9_$]*(\.[A-Za-z_][A-Za-z0-9_$]*){0,2}\Z")


class SnowflakeTarget(_Strict):
    write_mode: Literal["append", "replace", "merge"] = "append"
    merge_keys: tuple[str, ...] = ()
    # internal: the worker types rows and PUTs Parquet parts; external: COPY reads the landing bucket
    # through a named stage, so no data passes through the worker.
    stage: Literal["internal", "external"] = "internal"
    external_stage: str = ""  # [db.][schema.]name of a stage whose URL is the landing bucket root
    storage_integration: str = ""  # when set, the load creates ``external_stage`` with this integration

    @model_validator(mode="after")
    def _merge_needs_keys(self) -> SnowflakeTarget:
        if self.write_mode == "merge" and not self.merge_keys:
            raise ValueError("write_mode 'merge' needs merge_keys")
        return self

    @model_validator(mode="after")
    def _external_needs_a_stage(self) -> SnowflakeTarget:
        if self.stage == "external" and not self.external_stage:
            raise ValueError("stage 'external' needs external_stage (the named stage on the landing bucket)")
        for key in ("external_stage", "storage_integration"):
            value = getattr(self, key)
            if value and not _SNOWFLAKE_OBJECT.match(value):
                raise ValueError(f"{key} {value!r} must be 1 to 3 dot-separated identifiers (letters, digits, _, $)")
        return self


_OWNER = re.compile(r"^(team:[A-Za-z0-9_-]+|[^@\s]+@[^@\s]+\.[^@\s]+)$")  # as Dagster accepts owners
_TAG = re.compile(r"^[A-Za-z0-9_.-]{1,63}$")  # Dagster's asset tag keys and values


class TableConfig(_Strict):
    description: str = ""
    owners: tuple[str, ...] = ()  # e-mail addresses or team:<name>, shown in the UI on every asset of the table
    tags: Mapping[str, str] = Field(default_factory=dict)  # e.g. {domain: assessment}, on every asset of the table
    header: Literal["auto", "present", "absent"] = "auto"
    columns: tuple[str, ...] = ()  # names for headerless files, in file order
    # The files' text encoding (a Python codec name, e.g. cp949, latin-1); empty = sniffed per file
    # (UTF-8, UTF-8 with a BOM or CP949). Rows not valid in it are quarantined either way.
    encoding: str = ""
    force_string: bool | tuple[str, ...] = ()  # true = every column
    renames: Mapping[str, str] = Field(default_factory=dict)
    types: Mapping[str, str] = Field(default_factory=dict)
    # The share of a column's non-empty values that may fail its type: a column whose other values
    # all fit a type gets it, and the rows holding the misfits are quarantined. 0 = strict.
    type_tolerance: float = 0.01
    schema_change: SchemaChangePolicy = SchemaChangePolicy()
    targets: tuple[Literal["mysql", "snowflake"], ...] = ("mysql", "snowflake")
    mysql: MySQLTarget = MySQLTarget()
    snowflake: SnowflakeTarget = SnowflakeTarget()

    @field_validator("owners")
    @classmethod
    def _owners(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for owner in value:
            if not _OWNER.match(owner):
                raise ValueError(f"owner {owner!r} must be an e-mail address or team:<name>")
        return value

    @field_validator("tags")
    @classmethod
    def _tags(cls, value: Mapping[str, str]) -> Mapping[str, str]:
        for key, tag in value.items():
            if not (_TAG.match(str(key)) and _TAG.match(str(tag))) or key == "table":
                raise ValueError(
                    f"tag {key}: {tag} must be letters, digits, '_', '.' or '-' (at most 63 each), and not 'table'"
                )
        return value

    @field_validator("renames")
    @classmethod
    def _safe_rename_targets(cls, value: Mapping[str, str]) -> Mapping[str, str]:
        for source, target in value.items():
            if normalize_name(target, 1) != target:
                raise ValueError(
                    f"rename {source!r} -> {target!r}: the new name must already be a safe catalog name "
                    f"(lower case, letters, digits, _), e.g. {normalize_name(target, 1)!r}"
                )
        if len(set(value.values())) != len(value):
            raise ValueError("two columns are renamed to the same name")
        return value

    @field_validator("encoding")
    @classmethod
    def _known_encoding(cls, value: str) -> str:
        if not value:
            return value
        try:
            info = codecs.lookup(value)
        except LookupError:
            raise ValueError(f"unknown encoding {value!r} (a Python codec name, e.g. utf-8, cp949, latin-1)") from None
        ascii_bytes = bytes(range(128))
        try:
            ascii_compatible = ascii_bytes.decode(info.name) == ascii_bytes.decode("ascii")
        except (UnicodeDecodeError, LookupError, TypeError):
            ascii_compatible = False
        stateful = "2022" in info.name  # escape sequences switch what ASCII bytes mean
        if not getattr(info, "_is_text_encoding", True) or not ascii_compatible or stateful:
            raise ValueError(
                f"encoding {value!r} is not supported: files must be in a text encoding that keeps ASCII "
                "as is (utf-8, cp949, euc-kr, latin-1, cp1252, shift_jis, ...; not utf-16, utf-32 or iso-2022)"
            )
        return info.name

    @field_validator("types")
    @classmethod
    def _known_types(cls, value: Mapping[str, str]) -> Mapping[str, str]:
        for column, type_string in value.items():
            try:
                glue_types.parse(type_string)
            except glue_types.UnknownTypeError as exc:
                raise ValueError(f"column {column!r}: {exc}") from None
        return value

    @field_validator("type_tolerance", mode="before")
    @classmethod
    def _tolerance(cls, value: Any) -> float:
        number = value if isinstance(value, (int, float)) and not isinstance(value, bool) else None
        if number is None or not 0 <= number < 0.5:  # NaN fails both comparisons
            raise ValueError(
                f"type_tolerance must be a share of a column's non-empty values, at least 0 (strict) and "
                f"below 0.5, e.g. 0.01 for 1 % (not {value!r})"
            )
        return float(number)

    def forces_string(self, column: str) -> bool:
        if self.force_string is True:
            return True
        return bool(self.force_string) and column in self.force_string


class LandingConfig(_Strict):
    loose_file_pattern: str = DEFAULT_LOOSE_FILE_PATTERN

    @field_validator("loose_file_pattern")
    @classmethod
    def _has_table_group(cls, value: str) -> str:
        try:
            compiled = re.compile(value)
        except re.error as exc:
            raise ValueError(f"not a valid regular expression: {exc}") from None
        if "table" not in compiled.groupindex:
            raise ValueError("the pattern needs a named group (?P<table>...)")
        return value


class ExportConfig(_Strict):
    """Snowflake tables to export to S3: every table of one schema whose name matches a pattern."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    database: str = ""  # empty: the deployment's Snowflake database (SF_SNOWFLAKE_DATABASE)
    schema_name: str = Field("", alias="schema")  # empty: the deployment's schema (SF_SNOWFLAKE_SCHEMA)
    table_pattern: str  # Python regex, matched case-insensitively against the whole table name
    table_types: tuple[str, ...] = ("BASE TABLE",)  # INFORMATION_SCHEMA.TABLES.TABLE_TYPE values
    format: Literal["avro", "parquet"] = "avro"
    part_size_mb: float = Field(128.0, gt=0)
    incremental_column: str = ""  # tables with this column export only rows above the last maximum
    prefix: str = "exports/"  # each table goes to <prefix><table>/ in the landing bucket

    @field_validator("table_pattern")
    @classmethod
    def _compiles(cls, value: str) -> str:
        try:
            re.compile(value)
        except re.error as exc:
            raise ValueError(f"not a valid regular expression: {exc}") from None
        return value

    @field_validator("database", "schema_name", "incremental_column")
    @classmethod
    def _identifier(cls, value: str) -> str:
        if value and ("." in value or not _SNOWFLAKE_OBJECT.match(value)):
            raise ValueError(f"{value!r} must be one identifier (letters, digits, _, $)")
        return value

    @field_validator("table_types")
    @classmethod
    def _upper_types(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if not value:
            raise ValueError("list at least one table type, e.g. [BASE TABLE]")
        return tuple(t.strip().upper() for t in value)

    @field_validator("prefix")
    @classmethod
    def _safe_prefix(cls, value: str) -> str:
        if not re.fullmatch(r"(?:[a-z][a-z0-9_]*/)+", value):
            raise ValueError("must be lower-case folder names ([a-z][a-z0-9_]*) each ending in '/', e.g. exports/")
        return value


class Registry(_Strict):
    landing: LandingConfig = LandingConfig()
    tables: Mapping[str, TableConfig]
    exports: ExportConfig | None = None
    source: str = "<memory>"

    def table(self, name: str) -> TableConfig:
        return self.tables[name]


def load_registry(path: str | Path) -> Registry:
    """Read and validate a registry file."""
    path = Path(path)
    try:
        # the C loader when PyYAML has it: a 1,000-table registry parses in 0.15 s instead of 1 s
        raw = yaml.load(path.read_text(encoding="utf-8"), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except FileNotFoundError:
        raise RegistryError(f"{path}: registry file not found (set SF_TABLES_FILE)") from None
    except yaml.YAMLError as exc:
        raise RegistryError(f"{path}: not valid YAML: {exc}") from None
    return parse_registry(raw, source=str(path))


def parse_registry(raw: Any, *, source: str = "<memory>") -> Registry:
    """Validate registry data; ``defaults`` are merged into every table before validation."""
    if not isinstance(raw, dict):
        raise RegistryError(f"{source}: the registry must be a mapping with a 'tables' key")
    unknown = set(raw) - {"landing", "defaults", "tables", "exports"}
    if unknown:
        raise RegistryError(f"{source}: unknown top-level key(s) {sorted(unknown)}")
    tables_raw = raw.get("tables")
    if not isinstance(tables_raw, dict) or not tables_raw:
        raise RegistryError(f"{source}: 'tables' must map table names to their settings")
    defaults = raw.get("defaults") or {}
    if not isinstance(defaults, dict):
        raise RegistryError(f"{source}: 'defaults' must be a mapping")
    try:
        TableConfig.model_validate(defaults)
    except ValidationError as exc:
        raise RegistryError(f"{source}: defaults: {_explain(exc)}") from None

    tables: dict[str, TableConfig] = {}
    for name, settings in tables_raw.items():
        try:
            validate_table_name(name)
        except IdentifierError as exc:
            raise RegistryError(f"{source}: {exc}") from None
        if settings is not None and not isinstance(settings, dict):
            raise RegistryError(f"{source}: table {name!r}: settings must be a mapping")
        merged = _deep_merge(defaults, settings or {})
        try:
            tables[name] = TableConfig.model_validate(merged)
        except ValidationError as exc:
            raise RegistryError(f"{source}: table {name!r}: {_explain(exc)}") from None
    try:
        landing = LandingConfig.model_validate(raw.get("landing") or {})
    except ValidationError as exc:
        raise RegistryError(f"{source}: landing: {_explain(exc)}") from None
    return Registry(landing=landing, tables=tables, exports=_exports(raw.get("exports"), source), source=source)


def _exports(raw: Any, source: str) -> ExportConfig | None:
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise RegistryError(f"{source}: exports: must be a mapping")
    try:
        return ExportConfig.model_validate(raw)
    except ValidationError as exc:
        raise RegistryError(f"{source}: exports: {_explain(exc)}") from None


def _deep_merge(base: Mapping, override: Mapping) -> dict:
    """``override`` on top of ``base``; nested mappings (schema_change, mysql, snowflake) merge key by key."""
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(base.get(key), Mapping) and key not in ("renames", "types"):
            merged[key] = _deep_merge(base[key], value)
        else:
            merged[key] = value
    return merged


def _explain(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err["loc"]) or "(table)"
        message = "unknown key" if err["type"] == "extra_forbidden" else err["msg"]
        parts.append(f"key {where!r}: {message}")
    return "; ".join(parts)
