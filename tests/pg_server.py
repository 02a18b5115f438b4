"""A throwaway PostgreSQL server for the tests and the overlap benchmark, started from the machine's own server
binaries (Debian's postgresql package: /usr/lib/postgresql/N/bin; or $RATER_PG_BIN, or initdb on PATH).

PostgreSQL refuses to run as root, and CI runs as root: then initdb and the server run as the `postgres` user
(or `nobody`) through subprocess's user/group switch, in a folder that user owns. The server listens on
127.0.0.1 only, with password (scram-sha-256) authentication, fsync off (a test server: speed over durability)."""

import glob
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ADMIN = "rater_admin"


def find_bin_dir() -> Path | None:
    """Where initdb and pg_ctl live, or None when the machine has no PostgreSQL server binaries."""
    candidates = [os.environ.get("RATER_PG_BIN", "")]
    candidates += sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(Path(p).parent.name), reverse=True)
    if found := shutil.which("initdb"):
        candidates.append(str(Path(found).parent))
    for candidate in candidates:
        if candidate and (Path(candidate) / "initdb").exists() and (Path(candidate) / "pg_ctl").exists():
            return Path(candidate)
    return None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _server_user() -> str | None:
    """The user the server runs as: None (ourselves) unless we are root."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        try:
            pwd.getpwnam(name)
            return name
        except KeyError:
            continue
    raise RuntimeError("running as root, and neither a `postgres` nor a `nobody` user exists to run PostgreSQL")


@dataclass
class PgServer:
    bin_dir: Path
    folder: Path
    port: int
    password: str
    user: str | None
    options: str = ""

    def url(self, database: str = "postgres", *, password: str | None = None) -> str:
        secret = self.password if password is None else password
        return f"postgresql+psycopg://{ADMIN}:{secret}@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        """A new empty database; its URL."""
        import psycopg

        with psycopg.connect(f"host=127.0.0.1 port={self.port} user={ADMIN} password={self.password} "
                             "dbname=postgres", autocommit=True) as connection:
            connection.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def _run(self, *args: str, log: Path | None = None) -> None:
        kwargs = {"user": self.user, "group": pwd.getpwnam(self.user).pw_gid, "extra_groups": []} if self.user else {}
        result = subprocess.run([str(self.bin_dir / args[0]), *args[1:]], capture_output=True, text=True,
                                cwd=self.folder, **kwargs)
        if result.returncode != 0:
            detail = log.read_text(errors="replace")[-2000:] if log and log.exists() else ""
            raise RuntimeError(f"{args[0]} failed ({result.returncode}): {result.stderr.strip()}\n{detail}")

    def halt(self) -> None:
        """Stop the server but keep its data (the database is down until `resume`)."""
        self._run("pg_ctl", "stop", "-D", str(self.folder / "data"), "-m", "fast", "-w")

    def resume(self) -> None:
        log = self.folder / "server.log"
        self._run("pg_ctl", "start", "-D", str(self.folder / "data"), "-w", "-t", "60", "-l", str(log), "-o",
                  self.options, log=log)

    def stop(self) -> None:
        try:
            if (self.folder / "data" / "postmaster.pid").exists():  # not when a test that halted it failed midway
                self._run("pg_ctl", "stop", "-D", str(self.folder / "data"), "-m", "immediate", "-w")
        finally:
            shutil.rmtree(self.folder, ignore_errors=True)


def start_server(*, durable: bool = False) -> PgServer:
    """initdb a new cluster in a temporary folder and start it; stop() removes it again. Tests trade durability
    for speed (fsync off); `durable` keeps PostgreSQL's own defaults (the benchmark)."""
    bin_dir = find_bin_dir()
    if bin_dir is None:
        raise FileNotFoundError("no PostgreSQL server binaries (initdb, pg_ctl) on this machine")
    user = _server_user()
    folder = Path(tempfile.mkdtemp(prefix="rater-pg-"))
    password = secrets.token_hex(12)
    (folder / "pwfile").write_text(password + "\n")
    if user:
        entry = pwd.getpwnam(user)
        for path in (folder, folder / "pwfile"):
            os.chown(path, entry.pw_uid, entry.pw_gid)
    server = PgServer(bin_dir, folder, _free_port(), password, user)
    log = folder / "server.log"
    server._run("initdb", "-D", str(folder / "data"), "-U", ADMIN, f"--pwfile={folder / 'pwfile'}",
                "--auth-host=scram-sha-256", "--auth-local=scram-sha-256", "-E", "UTF8", "--locale=C.UTF-8",
                "--no-sync")
    options = f"-p {server.port} -k {folder} -c listen_addresses=127.0.0.1 -c max_connections=200"
    if not durable:
        options += " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
    server.options = options
    server._run("pg_ctl", "start", "-D", str(folder / "data"), "-w", "-t", "60", "-l", str(log), "-o", options,
                log=log)
    deadline = time.monotonic() + 30
    while True:  # pg_ctl -w returns once the server accepts connections; one real login to be sure
        try:
            import psycopg

            psycopg.connect(f"host=127.0.0.1 port={server.port} user={ADMIN} password={password} dbname=postgres",
                            connect_timeout=2).close()
            return server
        except Exception:
            if time.monotonic() > deadline:
                server.stop()
                raise
            time.sleep(0.2)
