"""Run a fakesnow server that keeps its state on disk, for the embedded local stack.

`python -m sf_platform.local.fakesnow_server --port P --db-path DIR` serves fakesnow's HTTP
app (the one the real `snowflake-connector-python` talks to) on 127.0.0.1:P. Stock fakesnow
keeps everything in memory; here every database lives in `DIR/<DATABASE>.db` (DuckDB files),
fakesnow's "global" catalog (stages, file formats, users, table and column comments) lives in
`DIR/_fs_global.db`, and files PUT to internal stages live under `DIR/stage`, so a restart on the
same DIR sees the same tables, rows and staged files. Databases found in DIR are attached at
start-up, so they are visible even to sessions that log in without naming them.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from pathlib import Path

GLOBAL_DB_FILE = "_fs_global.db"
STAGE_DIR = "stage"


def _patch_bucket_path(bucket: Path) -> None:
    """Point fakesnow's internal-stage storage at `bucket`, in every module that holds the path."""
    import fakesnow.transforms.stage as stage

    old = stage.LOCAL_BUCKET_PATH
    bucket.mkdir(parents=True, exist_ok=True)
    for name, module in list(sys.modules.items()):
        if name.startswith("fakesnow") and isinstance(getattr(module, "LOCAL_BUCKET_PATH", None), str):
            module.LOCAL_BUCKET_PATH = str(bucket)
    # fakesnow made an empty temp dir at import time; drop it rather than leak one per start.
    if old != str(bucket):
        with contextlib.suppress(OSError):
            os.rmdir(old)


def _persist_global_catalog(fs, db_path: Path) -> None:
    """Swap fakesnow's in-memory `_fs_global` catalog for a DuckDB file under db_path."""
    from fakesnow import info_schema
    from fakesnow.instance import GLOBAL_DATABASE_NAME
    from fakesnow.transforms import show

    conn = fs.duck_conn
    conn.execute(f"DETACH {GLOBAL_DATABASE_NAME}")
    conn.execute(f"ATTACH '{db_path / GLOBAL_DB_FILE}' AS {GLOBAL_DATABASE_NAME}")
    # every statement is "create ... if not exists", so this is safe on an existing file
    conn.execute(info_schema.fs_global_creation_sql())
    conn.execute(show.fs_global_creation_sql())


def _attach_existing_databases(fs, db_path: Path) -> list[str]:
    """Attach every `<DATABASE>.db` file in db_path the way fakesnow does on first use of a database."""
    import fakesnow.info_schema as info_schema
    import fakesnow.macros as macros

    conn = fs.duck_conn
    attached = {
        row[0].upper() for row in conn.execute("select database_name from duckdb_databases()").fetchall()
    }
    names = []
    for db_file in sorted(db_path.glob("*.db")):
        name = db_file.stem
        if db_file.name == GLOBAL_DB_FILE or name.upper() in attached or not name.isidentifier():
            continue
        conn.execute(f"ATTACH DATABASE '{db_file}' AS {name}")
        conn.execute(info_schema.per_db_creation_sql(name))
        conn.execute(macros.creation_sql(name))
        names.append(name)
    return names


def configure(db_path: Path):
    """Install a persistent FakeSnow as the server's shared instance; returns it."""
    import fakesnow.server
    from fakesnow.instance import FakeSnow

    db_path = db_path.resolve()
    db_path.mkdir(parents=True, exist_ok=True)
    _patch_bucket_path(db_path / STAGE_DIR)
    fs = FakeSnow(db_path=db_path)
    _persist_global_catalog(fs, db_path)
    _attach_existing_databases(fs, db_path)
    fakesnow.server.shared_fs = fs
    return fs


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="fakesnow server with state persisted on disk")
    parser.add_argument("--port", type=int, required=True, help="TCP port to listen on (127.0.0.1)")
    parser.add_argument("--db-path", type=Path, required=True, help="directory holding the DuckDB files")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    import fakesnow.server
    import uvicorn

    configure(args.db_path)
    print(f"fakesnow serving on http://{args.host}:{args.port} with state in {args.db_path}", flush=True)
    uvicorn.run(fakesnow.server.app, host=args.host, port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
