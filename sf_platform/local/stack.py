"""The embedded local stack: moto (S3 + Glue), fakesnow (Snowflake) and MySQL/MariaDB as plain processes.

`up` starts whatever is not already running as detached children of the caller (their own session,
output in `state_dir/logs`), records them in `state_dir/stack.json` and returns the `SF_*` settings
of the local deployment; `down` stops only what `up` started, by recorded pid, after checking that
the pid still runs the expected program; `status` reports what is recorded and whether it answers.
MySQL is reused when one already answers at SF_MYSQL_HOST:SF_MYSQL_PORT; otherwise a private
MariaDB/MySQL server is started on a free port with its data under `state_dir/mysql` (and Debian's
`mariadb-server` is installed first if no server binary exists and we may use apt). Only the
standard library and pymysql are used: no docker, no network beyond the loopback.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path

import pymysql

LOOPBACK = "127.0.0.1"
STATE_FILE = "stack.json"
LOCK_FILE = ".stack.lock"
LOG_DIR = "logs"
FAKESNOW_DIR = "fakesnow"
MYSQL_DIR = "mysql"
FAKESNOW_MODULE = "sf_platform.local.fakesnow_server"
# moto with Glue's VersionId compare-and-set (moto_glue.py): stock moto silently loses concurrent Iceberg
# commits. A stack started before this change runs plain "moto.server" and is still recognised as ours.
MOTO_MODULE = "sf_platform.local.moto_glue"
MOTO_MODULES = (MOTO_MODULE, "moto.server")
MYSQL_BINARIES = ("mariadbd", "mysqld")
MYSQL_INSTALL_DB = ("mariadb-install-db", "mysql_install_db")
SBIN_DIRS = ("/usr/sbin", "/usr/local/sbin", "/usr/bin", "/usr/local/bin")
START_TIMEOUT = 60.0
STOP_TIMEOUT = 20.0
# AF_UNIX paths are limited to 108 bytes on Linux
MAX_SOCKET_PATH = 100

Log = Callable[[str], None]


@dataclass
class Service:
    """One running service, as recorded in the state file."""

    name: str  # "moto" | "fakesnow" | "mysql"
    port: int
    pid: int | None  # None when we use an existing server we did not start
    started_by_us: bool
    host: str = LOOPBACK


class StackError(RuntimeError):
    """A service of the local stack could not be started or found."""


# ---------------------------------------------------------------- ports, pids, logs


def free_port() -> int:
    """A TCP port on the loopback that is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        return sock.getsockname()[1]


def port_open(port: int, host: str = LOOPBACK, timeout: float = 0.5) -> bool:
    """Whether something accepts TCP connections at host:port."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def http_answers(port: int, path: str = "/", timeout: float = 1.0) -> bool:
    """Whether an HTTP server answers at 127.0.0.1:port (any status code counts)."""
    try:
        with urllib.request.urlopen(f"http://{LOOPBACK}:{port}{path}", timeout=timeout):
            return True
    except urllib.error.HTTPError:
        return True
    except (OSError, ValueError):
        return False


def _proc_state(pid: int) -> str | None:
    """The one-letter state from /proc/<pid>/stat, or None when there is no such process."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[-1].split()[0]


def pid_alive(pid: int | None) -> bool:
    """Whether pid is a live (not zombie) process."""
    if not pid:
        return False
    _reap(pid)
    state = _proc_state(pid)
    if state is None:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True
    return state not in ("Z", "X")


def _reap(pid: int) -> None:
    """Collect the exit status of pid if it is our own finished child, so it does not linger as a zombie."""
    proc = _CHILDREN.get(pid)
    if proc is not None:
        proc.poll()
        return
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def _cmdline(pid: int) -> list[str]:
    """The argv of pid: from /proc on Linux, from `ps` elsewhere (e.g. macOS); [] when unknown."""
    if Path("/proc/self").is_dir():
        try:
            raw = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            return []
        return [part.decode(errors="replace") for part in raw.split(b"\0") if part]
    try:
        out = subprocess.run(
            ["ps", "-o", "command=", "-p", str(pid)], capture_output=True, text=True, timeout=5
        )
    except (OSError, subprocess.SubprocessError):
        return []
    return out.stdout.split()


def is_our_process(service: Service) -> bool:
    """Whether service.pid still runs the program we started for it (guards against reused pids)."""
    if not service.pid or not pid_alive(service.pid):
        return False
    argv = _cmdline(service.pid)
    port = str(service.port)
    if service.name == "moto":
        return any(m in argv for m in MOTO_MODULES) and port in argv
    if service.name == "fakesnow":
        return FAKESNOW_MODULE in argv and port in argv
    if service.name == "mysql":
        return bool(argv) and Path(argv[0]).name in MYSQL_BINARIES and f"--port={port}" in argv
    return False


def _log_tail(path: Path, lines: int = 20) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return f"(no log at {path})"
    tail = text.splitlines()[-lines:]
    return "\n".join(tail) if tail else f"(empty log {path})"


def _log_dir(state_dir: Path) -> Path:
    path = Path(state_dir) / LOG_DIR
    path.mkdir(parents=True, exist_ok=True)
    return path


# children started by this process, so that stop() can reap them; the CLI exits and leaves them running
_CHILDREN: dict[int, subprocess.Popen] = {}


def _child_env() -> dict[str, str]:
    """The caller's environment, plus our repo on PYTHONPATH so `python -m sf_platform...` imports."""
    env = dict(os.environ)
    repo_root = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (repo_root, env.get("PYTHONPATH", "")) if p)
    env["PYTHONUNBUFFERED"] = "1"
    return env


def _spawn(argv: list[str], log_path: Path, env: Mapping[str, str] | None = None) -> subprocess.Popen:
    """Start argv detached from the caller (own session, no stdin), output appended to log_path."""
    with open(log_path, "ab") as log_file:
        log_file.write(f"\n--- {time.strftime('%Y-%m-%d %H:%M:%S')} starting: {' '.join(argv)}\n".encode())
        log_file.flush()
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env=dict(env) if env is not None else None,
            close_fds=True,
            # A neutral working directory: `python -m` puts the cwd on sys.path, and a stray module
            # there (say an `org.py`, which the stdlib probes for Jython) would be imported.
            cwd=log_path.parent,
        )
    _CHILDREN[proc.pid] = proc
    return proc


def _wait_until(
    ready: Callable[[], bool], proc: subprocess.Popen, what: str, log_path: Path, timeout: float
) -> None:
    """Poll ready() until it is true; fail fast, with the log's tail, if proc exits or time runs out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if ready():
            return
        if proc.poll() is not None:
            raise StackError(
                f"{what} exited with code {proc.returncode} before it was ready; "
                f"last lines of {log_path}:\n{_log_tail(log_path)}"
            )
        time.sleep(0.1)
    _terminate(proc.pid)
    raise StackError(
        f"{what} did not become ready within {timeout:.0f} s; last lines of {log_path}:\n{_log_tail(log_path)}"
    )


def _check_port_free(port: int, what: str) -> None:
    if port_open(port):
        raise StackError(f"cannot start {what}: port {port} on {LOOPBACK} is already in use")


# ---------------------------------------------------------------- moto and fakesnow


def start_moto(state_dir: Path, port: int | None = None) -> Service:
    """Start a moto server (S3, Glue and every other mocked AWS API) on 127.0.0.1:port."""
    port = port or free_port()
    _check_port_free(port, "moto")
    log_path = _log_dir(state_dir) / "moto.log"
    argv = [sys.executable, "-m", MOTO_MODULE, "-H", LOOPBACK, "-p", str(port)]
    proc = _spawn(argv, log_path, _child_env())
    _wait_until(
        lambda: http_answers(port, "/moto-api/"), proc, f"moto server on port {port}", log_path, START_TIMEOUT
    )
    return Service("moto", port, proc.pid, True)


def start_fakesnow(state_dir: Path, port: int | None = None) -> Service:
    """Start our persistent fakesnow server on 127.0.0.1:port, data under state_dir/"fakesnow"."""
    port = port or free_port()
    _check_port_free(port, "fakesnow")
    db_path = (Path(state_dir) / FAKESNOW_DIR).resolve()
    db_path.mkdir(parents=True, exist_ok=True)
    log_path = _log_dir(state_dir) / "fakesnow.log"
    argv = [sys.executable, "-m", FAKESNOW_MODULE, "--port", str(port), "--db-path", str(db_path)]
    proc = _spawn(argv, log_path, _child_env())
    _wait_until(lambda: http_answers(port), proc, f"fakesnow server on port {port}", log_path, START_TIMEOUT)
    return Service("fakesnow", port, proc.pid, True)


# ---------------------------------------------------------------- MySQL / MariaDB


def mysql_settings(env: Mapping[str, str]) -> dict[str, str]:
    """The MySQL server named by the environment (SF_MYSQL_*), with defaults for a local root login."""
    return {
        "host": env.get("SF_MYSQL_HOST") or LOOPBACK,
        "port": env.get("SF_MYSQL_PORT") or "3306",
        "user": env.get("SF_MYSQL_USER") or "root",
        "password": env.get("SF_MYSQL_PASSWORD", ""),
    }


def probe_mysql(host: str, port: int, user: str, password: str, timeout: float = 2.0) -> str | None:
    """None when a server at host:port accepts the login and answers `SELECT 1`; otherwise why not."""
    try:
        conn = pymysql.connect(
            host=host,
            port=int(port),
            user=user,
            password=password,
            connect_timeout=timeout,
            read_timeout=timeout,
            write_timeout=timeout,
        )
    except pymysql.MySQLError as exc:
        return f"{type(exc).__name__}: {exc.args[-1] if exc.args else exc}"
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT 1")
            cur.fetchone()
        return None
    except pymysql.MySQLError as exc:
        return f"{type(exc).__name__}: {exc}"
    finally:
        conn.close()


def find_mysql_server() -> Path | None:
    """The mariadbd or mysqld binary on PATH or in the usual sbin folders, if any."""
    for name in MYSQL_BINARIES:
        if found := shutil.which(name):
            return Path(found)
        for folder in SBIN_DIRS:
            candidate = Path(folder) / name
            if candidate.is_file() and os.access(candidate, os.X_OK):
                return candidate
    return None


def _find_install_db() -> Path | None:
    for name in MYSQL_INSTALL_DB:
        if found := shutil.which(name):
            return Path(found)
        for folder in SBIN_DIRS:
            candidate = Path(folder) / name
            if candidate.is_file():
                return candidate
    return None


def _is_mariadb(server: Path) -> bool:
    try:
        out = subprocess.run([str(server), "--version"], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        return "mariadb" in server.name
    return "mariadb" in out.lower()


def install_mariadb(log: Log = print) -> Path:
    """Install Debian's mariadb-server with apt-get, without starting its system service."""
    if shutil.which("apt-get") is None or os.geteuid() != 0:
        raise StackError(
            "no MySQL server answers and no mariadbd/mysqld binary was found. Install one, e.g. "
            "`sudo apt-get install mariadb-server` (Debian/Ubuntu) or `brew install mariadb` (macOS), "
            "or point SF_MYSQL_HOST/SF_MYSQL_PORT/SF_MYSQL_USER/SF_MYSQL_PASSWORD at a running server."
        )
    log("No MySQL server or binary found: installing Debian's mariadb-server package with apt-get ...")
    policy = Path("/usr/sbin/policy-rc.d")
    own_policy = not policy.exists()
    if own_policy:  # tells the package scripts not to start the system service
        policy.write_text("#!/bin/sh\nexit 101\n")
        policy.chmod(0o755)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    try:
        for argv in (["apt-get", "update"], ["apt-get", "install", "-y", "mariadb-server"]):
            result = subprocess.run(argv, env=env, capture_output=True, text=True)
            if result.returncode != 0:
                tail = "\n".join((result.stdout + result.stderr).splitlines()[-20:])
                raise StackError(f"`{' '.join(argv)}` failed with code {result.returncode}:\n{tail}")
    finally:
        if own_policy:
            policy.unlink(missing_ok=True)
    server = find_mysql_server()
    if server is None:
        raise StackError("installed mariadb-server, but still found no mariadbd/mysqld binary")
    log(f"Installed {server}.")
    return server


def _socket_path(mysql_dir: Path) -> Path:
    path = mysql_dir / "mysql.sock"
    if len(str(path)) <= MAX_SOCKET_PATH:
        return path
    # a deep state dir would overflow the AF_UNIX limit; keep the socket in a short private temp dir
    return Path(tempfile.mkdtemp(prefix="sf-mysql-")) / "mysql.sock"


def _init_datadir(server: Path, datadir: Path, log_path: Path) -> None:
    """Create the system tables in a fresh datadir, with root allowed in by an empty password."""
    datadir.mkdir(parents=True, exist_ok=True)
    if _is_mariadb(server):
        install_db = _find_install_db()
        if install_db is None:
            raise StackError(
                f"found {server} but not mariadb-install-db/mysql_install_db to initialize a datadir"
            )
        argv = [
            str(install_db),
            "--no-defaults",
            f"--datadir={datadir}",
            "--user=root",
            "--auth-root-authentication-method=normal",
            "--skip-test-db",
            "--skip-name-resolve",
        ]
    else:  # Oracle MySQL 5.7+ initializes with the server binary itself
        argv = [str(server), "--no-defaults", "--initialize-insecure", f"--datadir={datadir}", "--user=root"]
    with open(log_path, "ab") as log_file:
        result = subprocess.run(
            argv, stdin=subprocess.DEVNULL, stdout=log_file, stderr=subprocess.STDOUT, timeout=300
        )
    if result.returncode != 0:
        shutil.rmtree(datadir, ignore_errors=True)
        raise StackError(
            f"initializing the MySQL datadir {datadir} failed (code {result.returncode}); "
            f"last lines of {log_path}:\n{_log_tail(log_path)}"
        )


def start_private_mysql(state_dir: Path, server: Path, port: int | None = None) -> Service:
    """Start a private mariadbd/mysqld on 127.0.0.1:port with its data under state_dir/"mysql"."""
    port = port or free_port()
    _check_port_free(port, "MySQL")
    mysql_dir = (Path(state_dir) / MYSQL_DIR).resolve()
    datadir = mysql_dir / "data"
    logs = _log_dir(state_dir).resolve()
    if not (datadir / "mysql").is_dir():
        _init_datadir(server, datadir, logs / "mysql-init.log")
    error_log = logs / "mysql.err"
    argv = [
        str(server),
        "--no-defaults",
        "--user=root",
        f"--datadir={datadir}",
        f"--port={port}",
        f"--bind-address={LOOPBACK}",
        f"--socket={_socket_path(mysql_dir)}",
        f"--pid-file={mysql_dir / 'mysql.pid'}",
        f"--log-error={error_log}",
        "--local-infile=1",
        "--character-set-server=utf8mb4",
        "--collation-server=utf8mb4_unicode_ci",
        "--skip-networking=0",
        "--skip-name-resolve",
    ]
    proc = _spawn(argv, logs / "mysql.log")
    what = f"private MySQL server {server.name} on port {port}"
    ready = lambda: probe_mysql(LOOPBACK, port, "root", "", timeout=1.0) is None  # noqa: E731
    _wait_until(ready, proc, what, error_log, START_TIMEOUT)
    return Service("mysql", port, proc.pid, True)


def ensure_mysql(state_dir: Path, env: Mapping[str, str] = os.environ, *, log: Log = print) -> Service:
    """Use the MySQL named by SF_MYSQL_* if it answers; otherwise start (installing if need be) a private one."""
    wanted = mysql_settings(env)
    host, port = wanted["host"], int(wanted["port"])
    reason = probe_mysql(host, port, wanted["user"], wanted["password"])
    if reason is None:
        log(f"Using the MySQL server already running at {host}:{port} (user {wanted['user']}).")
        return Service("mysql", port, None, False, host=host)
    log(f"No usable MySQL at {host}:{port} ({reason}); starting a private server.")
    server = find_mysql_server() or install_mariadb(log)
    started = time.monotonic()
    service = start_private_mysql(state_dir, server)
    log(f"Started private {server.name} on {LOOPBACK}:{service.port} in {time.monotonic() - started:.1f} s.")
    return service


def ensure_database(service: Service, user: str, password: str, database: str) -> None:
    """CREATE DATABASE IF NOT EXISTS database (utf8mb4) on the server of service."""
    if not re.fullmatch(r"[A-Za-z0-9_$]+", database):
        raise StackError(f"refusing to create MySQL database with an unusual name: {database!r}")
    conn = pymysql.connect(
        host=service.host, port=service.port, user=user, password=password, connect_timeout=5
    )
    try:
        with conn.cursor() as cur:
            cur.execute(
                f"CREATE DATABASE IF NOT EXISTS `{database}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"
            )
    finally:
        conn.close()


# ---------------------------------------------------------------- stopping


def _terminate(pid: int, timeout: float = STOP_TIMEOUT) -> None:
    """SIGTERM pid, wait up to timeout for it to go, then SIGKILL it."""
    for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 5.0)):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            break
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline and pid_alive(pid):
            time.sleep(0.05)
        if not pid_alive(pid):
            break
    proc = _CHILDREN.pop(pid, None)
    if proc is not None:
        proc.poll()


def stop(service: Service) -> None:
    """Stop service if we started it and its pid still runs our program; SIGTERM, then SIGKILL."""
    if not service.started_by_us or not service.pid:
        return
    if not is_our_process(service):
        _CHILDREN.pop(service.pid, None)
        return
    _terminate(service.pid)


# ---------------------------------------------------------------- state file and the stack


def read_state(state_dir: Path) -> dict[str, Service]:
    """The services recorded in state_dir/stack.json, by name (empty when there is none)."""
    path = Path(state_dir) / STATE_FILE
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise StackError(f"cannot read {path}: {exc}; stop the processes by hand and delete it") from exc
    return {item["name"]: Service(**item) for item in data.get("services", [])}


def write_state(state_dir: Path, services: Mapping[str, Service]) -> None:
    """Record services in state_dir/stack.json (written atomically)."""
    path = Path(state_dir) / STATE_FILE
    payload = {"services": [asdict(s) for s in services.values()]}
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(payload, indent=2) + "\n")
    tmp.replace(path)


@contextlib.contextmanager
def _locked(state_dir: Path) -> Iterator[None]:
    """Hold an exclusive lock on state_dir, so two `up`/`down` runs do not race each other."""
    with open(Path(state_dir) / LOCK_FILE, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _running(service: Service) -> bool:
    """Whether a recorded service is up: our pid with its port answering, or an existing server answering."""
    if service.started_by_us and not is_our_process(service):
        return False
    if service.name == "mysql" and service.started_by_us:
        # a real login, rather than a bare TCP connect that the server logs as an aborted connection
        return probe_mysql(service.host, service.port, "root", "", timeout=1.0) is None
    return port_open(service.port, service.host)


def _reuse_or_start(name: str, recorded: Service | None, start: Callable[[], Service], log: Log) -> Service:
    if recorded is not None and recorded.started_by_us and _running(recorded):
        log(f"{name} already running on port {recorded.port} (pid {recorded.pid}).")
        return recorded
    started = time.monotonic()
    service = start()
    log(
        f"Started {name} on {LOOPBACK}:{service.port} (pid {service.pid}) in {time.monotonic() - started:.1f} s."
    )
    return service


def local_settings(
    state_dir: Path, services: Mapping[str, Service], env: Mapping[str, str]
) -> dict[str, str]:
    """Every SF_* setting of the local deployment, for the given running services."""
    moto, fakesnow, mysql = services["moto"], services["fakesnow"], services["mysql"]
    if mysql.started_by_us:
        mysql_user, mysql_password = "root", ""
    else:
        wanted = mysql_settings(env)
        mysql_user, mysql_password = wanted["user"], wanted["password"]
    return {
        "SF_ENV": "local",
        "SF_STATE_DIR": str(Path(state_dir).resolve()),
        "SF_AWS_REGION": env.get("SF_AWS_REGION") or "us-east-1",
        "SF_AWS_ENDPOINT_URL": f"http://{LOOPBACK}:{moto.port}",
        "SF_AWS_ACCESS_KEY_ID": "testing",
        "SF_AWS_SECRET_ACCESS_KEY": "testing",
        "SF_LANDING_BUCKET": env.get("SF_LANDING_BUCKET") or "sf-landing",
        "SF_GLUE_DATABASE": env.get("SF_GLUE_DATABASE") or "sf_raw",
        "SF_MYSQL_HOST": mysql.host,
        "SF_MYSQL_PORT": str(mysql.port),
        "SF_MYSQL_USER": mysql_user,
        "SF_MYSQL_PASSWORD": mysql_password,
        "SF_MYSQL_DATABASE": env.get("SF_MYSQL_DATABASE") or "sf_mirror",
        "SF_SNOWFLAKE_ACCOUNT": "fakesnow",
        "SF_SNOWFLAKE_USER": "fake",
        "SF_SNOWFLAKE_PASSWORD": "snow",
        "SF_SNOWFLAKE_HOST": LOOPBACK,
        "SF_SNOWFLAKE_PORT": str(fakesnow.port),
        "SF_SNOWFLAKE_PROTOCOL": "http",
        "SF_SNOWFLAKE_DATABASE": env.get("SF_SNOWFLAKE_DATABASE") or "SF_DEMO",
        "SF_SNOWFLAKE_SCHEMA": env.get("SF_SNOWFLAKE_SCHEMA") or "RAW",
    }


def up(state_dir: Path, env: Mapping[str, str] = os.environ, *, log: Log = print) -> dict[str, str]:
    """Start whatever is not already running (read state_dir/"stack.json"; a recorded service whose pid is
    alive and port answers is reused, so `up` twice is idempotent), record services in
    state_dir/"stack.json", and return every SF_* setting for the local deployment."""
    state_dir = Path(state_dir).resolve()
    state_dir.mkdir(parents=True, exist_ok=True)
    with _locked(state_dir):
        return _up(state_dir, env, log)


def _up(state_dir: Path, env: Mapping[str, str], log: Log) -> dict[str, str]:
    services = read_state(state_dir)
    services["moto"] = _reuse_or_start("moto", services.get("moto"), lambda: start_moto(state_dir), log)
    write_state(state_dir, services)
    services["fakesnow"] = _reuse_or_start(
        "fakesnow", services.get("fakesnow"), lambda: start_fakesnow(state_dir), log
    )
    write_state(state_dir, services)
    recorded = services.get("mysql")
    if recorded is not None and recorded.started_by_us and _running(recorded):
        log(f"mysql (private) already running on port {recorded.port} (pid {recorded.pid}).")
    else:
        services["mysql"] = ensure_mysql(state_dir, env, log=log)
    write_state(state_dir, services)

    settings = local_settings(state_dir, services, env)
    user, password, database = (settings[f"SF_MYSQL_{k}"] for k in ("USER", "PASSWORD", "DATABASE"))
    try:
        ensure_database(services["mysql"], user, password, database)
    except pymysql.MySQLError as exc:
        if services["mysql"].started_by_us:
            raise
        log(f"Warning: could not create MySQL database {database} as {user}: {exc}")
    return settings


def down(state_dir: Path, *, log: Log = print) -> list[str]:
    """Stop only what `up` started (checking each pid is still ours), remove stack.json; names stopped."""
    state_dir = Path(state_dir)
    if not (state_dir / STATE_FILE).exists():
        log(f"Nothing recorded in {state_dir / STATE_FILE}; nothing to stop.")
        return []
    with _locked(state_dir):
        return _down(state_dir, log)


def _down(state_dir: Path, log: Log) -> list[str]:
    services = read_state(state_dir)
    if not services:
        log(f"Nothing recorded in {state_dir / STATE_FILE}; nothing to stop.")
    stopped = []
    for service in services.values():
        if not service.started_by_us:
            log(f"Leaving {service.name} at {service.host}:{service.port} alone (not started by us).")
        elif not is_our_process(service):
            log(f"{service.name} (pid {service.pid}) is no longer running.")
        else:
            stop(service)
            stopped.append(service.name)
            log(f"Stopped {service.name} (pid {service.pid}).")
    (state_dir / STATE_FILE).unlink(missing_ok=True)
    return stopped


def status(state_dir: Path) -> list[dict]:
    """One dict per recorded service: name, host, port, pid, started_by_us, alive."""
    return [{**asdict(s), "alive": _running(s)} for s in read_state(state_dir).values()]


# ---------------------------------------------------------------- .env


_ENV_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _quote_env_value(value: str) -> str:
    """Single-quote value for python-dotenv, which then reads it back verbatim; only \\ and ' are escaped."""
    return "'" + str(value).replace("\\", "\\\\").replace("'", "\\'") + "'"


def write_env_file(path: Path, values: Mapping[str, str]) -> None:
    """Write values as sorted KEY='value' lines that python-dotenv reads back verbatim (mode 0600).

    Raises ValueError for a value containing "${": python-dotenv would expand it and has no escape.
    """
    lines = [
        "# Generated by `sf-platform stack up` for the local stack; rerun it rather than editing by hand.",
        "# Local configuration only: never commit this file.",
    ]
    for key in sorted(values):
        if not _ENV_KEY.fullmatch(key):
            raise ValueError(f"not a valid environment variable name: {key!r}")
        if "${" in str(values[key]):  # python-dotenv expands ${NAME} even in single quotes, with no escape
            raise ValueError(
                f"the value of {key} contains '${{', which python-dotenv would expand; change it"
            )
        lines.append(f"{key}={_quote_env_value(values[key])}")
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write("\n".join(lines) + "\n")
    tmp.replace(path)
