"""A throw-away PostgreSQL cluster for tests that restart the database (scripts/loadtest/run.py,
tests/test_db_restart.py): initdb in a temporary folder, owned by the postgres user, listening on a
free loopback port, so that restarting it disturbs no other database on the machine."""
from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

PG_BIN = Path("/usr/lib/postgresql")


class Unavailable(RuntimeError):
    """No PostgreSQL server binaries here, or no way to run them as the postgres user."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PrivatePostgres:
    def __init__(self):
        versions = sorted((p for p in PG_BIN.iterdir() if (p / "bin" / "initdb").exists()),
                          key=lambda p: int(p.name)) if PG_BIN.is_dir() else []
        if not versions:
            raise Unavailable("no initdb under /usr/lib/postgresql (apt-get install postgresql)")
        try:
            self.owner = pwd.getpwnam("postgres")
        except KeyError:
            raise Unavailable("no postgres user") from None
        if os.geteuid() != 0:
            raise Unavailable("runs initdb as the postgres user: needs root (runuser)")
        self.bin = versions[-1] / "bin"
        self.dir = Path(tempfile.mkdtemp(prefix="kepu-private-pg-"))
        os.chmod(self.dir, 0o755)
        os.chown(self.dir, self.owner.pw_uid, self.owner.pw_gid)
        self.port = free_port()
        self.url = f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def _ctl(self, *args: str, check: bool = True) -> None:
        subprocess.run(["runuser", "-u", "postgres", "--", str(self.bin / "pg_ctl"), "-D", str(self.dir / "data"),
                        "-l", str(self.dir / "log"), "-w", "-t", "60", *args], check=check, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL if not check else None)

    def start(self) -> None:
        subprocess.run(["runuser", "-u", "postgres", "--", str(self.bin / "initdb"), "-D", str(self.dir / "data"),
                        "-A", "trust", "-U", "postgres", "-E", "UTF8", "--locale", "C"], check=True,
                       stdout=subprocess.DEVNULL)
        self._ctl("-o", f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c max_connections=200",
                  "start")

    def restart(self) -> None:
        """`pg_ctl restart -m fast`: every session is ended at once, then the server starts again."""
        self._ctl("-m", "fast", "restart")

    def stop(self) -> None:
        try:
            if (self.dir / "data").exists():
                self._ctl("-m", "immediate", "stop", check=False)
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)
