"""COPY of the hub's Parquet data files into a Snowflake table, through the registry's stage mode.

- ``external`` (production): a named stage whose URL is the landing bucket root. COPY names the data
  files (``_curated/<table>/data/...``) in its ``FILES`` list, at most 1,000 per statement, and
  Snowflake reads them where they are: no row passes through the worker.
- ``internal`` (the local stack): the same files are downloaded from S3 and PUT, unchanged, into a
  directory of the internal stage that belongs to this call alone (``<table>/<run id>/<nonce>/``), and
  one COPY loads that directory (fakesnow cannot combine an internal stage with ``FILES``). Files are
  fetched ``GROUP_FILES`` at a time on ``DOWNLOADERS`` threads and deleted locally once PUT, so the
  worker's disk holds one group (the hub writes files of its target size, default 128 MB). COPY purges
  what it loads; ``clean`` removes what a failed call left.

Either way the rows COPY reports must equal the rows the hub says the files hold, or the statement's
transaction is rolled back by the caller's error.
"""

from __future__ import annotations

import os
import tempfile
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from sf_platform.core import snowflake_sql as sql
from sf_platform.resources.aws import LandingBucket

GROUP_FILES = 8  # data files downloaded before they are PUT
DOWNLOADERS = 4
REMOVE_FALLBACK = "stage not cleaned of this run's unloaded files (fakesnow cannot parse REMOVE @stage)"


class StageError(RuntimeError):
    """The data files could not be copied; the message names the table and the reason."""


@dataclass
class Stage:
    """Where one table load's files are copied from. ``run_path``: the internal stage's directory for
    this load call (the external stage ignores it)."""

    cur: object
    bucket: LandingBucket
    stage_ref: str
    external: bool
    run_path: str
    name: str  # the target table, for messages
    heartbeat: Callable[[], None] = lambda: None
    notes: list[str] = field(default_factory=list)
    files_copied: int = 0
    put_files: bool = False  # this call PUT files into the internal stage

    def copy(self, into_ref: str, data_files: Sequence[str], rows: int) -> int:
        """COPY ``data_files`` (s3:// URIs of hub data files holding ``rows`` rows) into ``into_ref``;
        the rows loaded."""
        if not data_files:
            return 0
        loaded = self._copy_external(into_ref, data_files) if self.external else self._copy_internal(into_ref, data_files)
        if loaded != rows:
            raise StageError(
                f"{self.name}: the hub's {len(data_files)} data files hold {rows} rows but COPY loaded {loaded} "
                f"({data_files[0]} ...)"
            )
        self.files_copied += len(data_files)
        return loaded

    def clean(self) -> None:
        """Remove what is left of this load's files in the internal stage (COPY purges what it loads)."""
        if self.external or not self.put_files:
            return
        try:
            self.cur.execute(sql.remove_statement(self.stage_ref, self.run_path))
        except Exception as exc:
            if not sql.is_remove_unsupported(exc):
                raise
            if REMOVE_FALLBACK not in self.notes:
                self.notes.append(REMOVE_FALLBACK)

    def _copy_external(self, into_ref: str, data_files: Sequence[str]) -> int:
        names = [sql.stage_relative(uri, self.bucket.bucket) for uri in data_files]
        loaded = 0
        for chunk in sql.chunks(names, sql.MAX_FILES_PER_COPY):
            self.cur.execute(*sql.copy_hub_files(into_ref, self.stage_ref, files=chunk))
            loaded += _loaded(self.cur.fetchall())
            self.heartbeat()
        return loaded

    def _copy_internal(self, into_ref: str, data_files: Sequence[str]) -> int:
        path = f"{self.run_path}{uuid.uuid4().hex}/"  # this COPY's own directory
        location = sql.stage_location(self.stage_ref, path)
        with tempfile.TemporaryDirectory(prefix="sf_snowflake_") as tmp, ThreadPoolExecutor(DOWNLOADERS) as pool:
            for group in _groups(self.bucket, data_files):
                # Numbered names: files of different partition directories may share a base name, and
                # a PUT names its file inside quotes.
                local = [os.path.join(tmp, f"{n:06d}.parquet") for n, _ in group]
                for _ in pool.map(self.bucket.client().download_file, [self.bucket.bucket] * len(group),
                                  [key for _, key in group], local):
                    pass
                self.put_files = True
                for file in local:
                    self.cur.execute(f"PUT 'file://{file}' {location} AUTO_COMPRESS=FALSE PARALLEL=4")
                    os.remove(file)
                self.heartbeat()
        self.cur.execute(*sql.copy_hub_files(into_ref, self.stage_ref, path, purge=True))
        return _loaded(self.cur.fetchall())


def _groups(bucket: LandingBucket, data_files: Sequence[str]):
    """(number, key) of every data file, in groups of at most GROUP_FILES files."""
    keys = [(n, sql.stage_relative(uri, bucket.bucket)) for n, uri in enumerate(data_files)]
    for start in range(0, len(keys), GROUP_FILES):
        yield keys[start : start + GROUP_FILES]


def _loaded(rows) -> int:
    outcome = sql.copy_outcome(rows)
    if outcome.skipped_files or outcome.errors:
        raise StageError(f"COPY did not load every file: skipped {outcome.skipped_files}, errors {outcome.errors}")
    return outcome.rows_loaded
