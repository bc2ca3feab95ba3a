#!/usr/bin/env python3
"""Training-hour exports at county scale, beside the database's own CSV output of the same query.

    .venv/bin/python scripts/bench/export.py [--people 50000] [--records 1000000] [--xlsx-records 100000] [--repeat 3]
    .venv/bin/python scripts/bench/export.py --reuse /tmp/export-bench-XXXX     # time again, no seeding
    .venv/bin/python scripts/bench/export.py --postgres                         # a throw-away PostgreSQL DB

Seeds the benches' county (scripts/bench/county.py: 2,000 units, `--people` people, `--records` ledger
records over this year and last) on SQLite through the real migrations — or, with --postgres, on a new
database at 127.0.0.1:5432 (user postgres), dropped afterwards — then, in one run, each in its own
child process:

- the detail CSV of every record (lms/records/export_sql.py, what `lms hours export` and the web's
  jobs run) beside `sqlite3 -csv` (or `psql \\copy … csv`) of the same join, in the same order;
- the per-person summary beside the same GROUP BY in sqlite3 / psql;
- the XLSX of about `--xlsx-records` records (the first days of the ledger, so a date filter).

Each case runs `--repeat` times, interleaved; the best wall-clock time counts (the machine is shared).
It prints wall-clock and CPU seconds (user + system of the client process: on a loaded machine the
wall clock includes waiting for a core; on PostgreSQL the server's work is in neither CPU figure), the
ratio of ours to the database's, and our exports' peak memory (the child's VmHWM) beside its size
before exporting (the app alone, started and its mappers configured, as in a running worker).
Targets: CSV and summary ≤ 2× the database, summary < 200 MB, XLSX of 100,000 ≤ 10 s and < 200 MB.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from contextlib import nullcontext
from datetime import date, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from county import make_app, postgres_database, seed_county, upgrade  # noqa: E402  (the benches' one county)

JOIN = ('FROM training_record r JOIN "user" u ON u.id = r.user_id JOIN unit un ON un.id = u.unit_id')
DETAIL_SQL = ("SELECT r.id, u.full_name, u.username, un.name, un.code, u.audience, r.title, r.kind, r.hours, "
              f"r.watched_minutes, r.quiz_score, r.earned_at, r.certificate_no {JOIN} ORDER BY r.earned_at, r.id")
SUMMARY_SQL = (f"SELECT u.full_name, u.username, un.name, un.code, u.audience, sum(r.hours) {JOIN} "
               "GROUP BY u.id, un.id ORDER BY un.code, u.username")


def vm_hwm_kb(status: str = "/proc/self/status") -> int:
    for line in Path(status).read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


def child(args) -> None:
    """One export in this process; prints its figures as JSON."""
    os.environ["LMS_INSTANCE_DIR"] = str(Path(args.tmp) / "instance")
    from lms import create_app

    app = create_app({"SQLALCHEMY_DATABASE_URI": args.db, "DATA_DIR": str(Path(args.tmp) / "data"),
                      "SECRET_KEY": "bench"})
    with app.app_context():
        from sqlalchemy.orm import configure_mappers

        from lms.records import export_sql

        configure_mappers()  # once per process, done long before in a running worker or web process

        filters = export_sql.Filters(date.fromisoformat(args.date_from) if args.date_from else None,
                                     date.fromisoformat(args.date_to) if args.date_to else None)
        rows = 0

        def progress(n: int) -> None:
            nonlocal rows
            rows += n

        resting = vm_hwm_kb()
        wall, cpu = time.perf_counter(), time.process_time()
        if args.child == "xlsx":
            rows = export_sql.write_xlsx(args.out, False, filters, "zh")
        else:
            with open(args.out, "wb") as out:
                export_sql.write_csv(out, args.child == "summary", filters, "zh", progress)
        print(json.dumps({"wall": time.perf_counter() - wall, "cpu": time.process_time() - cpu, "rows": rows,
                          "resting_kb": resting, "peak_kb": vm_hwm_kb(), "bytes": Path(args.out).stat().st_size}))


def run(command: list[str], output: Path) -> dict:
    """Run a child with its standard output into `output`; its wall-clock, CPU (user + system) and peak
    memory from its own rusage. posix_spawn, not fork: a forked child's peak would count this process's."""
    started = time.perf_counter()
    pid = os.posix_spawnp(command[0], command, os.environ, file_actions=[
        (os.POSIX_SPAWN_OPEN, 1, str(output), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)])
    _pid, status, usage = os.wait4(pid, 0)
    if os.waitstatus_to_exitcode(status):
        raise SystemExit(f"{' '.join(command[:3])}… failed ({os.waitstatus_to_exitcode(status)})")
    # (no peak memory: Linux counts the spawning process's into a child's ru_maxrss at exec)
    return {"wall": time.perf_counter() - started, "cpu": usage.ru_utime + usage.ru_stime}


def ours(kind: str, db: str, tmp: Path, out: Path, date_from=None, date_to=None) -> dict:
    command = [sys.executable, __file__, "--child", kind, "--db", db, "--tmp", str(tmp), "--out", str(out)]
    if date_from:
        command += ["--date-from", date_from.isoformat(), "--date-to", date_to.isoformat()]
    run(command, tmp / "child.json")
    export = json.loads((tmp / "child.json").read_text())
    # the export alone (the child also started the app): its own wall and CPU, the process's peak
    return {"wall": export["wall"], "cpu": export["cpu"], "peak_kb": export["peak_kb"],
            "resting_kb": export["resting_kb"], "rows": export["rows"], "bytes": export["bytes"]}


def theirs(sql: str, db: str, postgres: bool, out: Path) -> dict:
    if postgres:
        name = db.rsplit("/", 1)[1]
        return run(["psql", "-h", "127.0.0.1", "-U", "postgres", "-d", name, "-q", "-c",
                    f"\\copy ({sql}) to '{out}' with csv"], out.with_suffix(".log"))
    return run(["sqlite3", "-csv", db.removeprefix("sqlite:///"), sql], out)


def best(runs: list[dict]) -> dict:
    return min(runs, key=lambda figures: figures["wall"])


def xlsx_window(app, records: int) -> tuple[date, date]:
    """Local days from the first record's to the day before the one holding the `records`-th: a date
    filter for about that many records."""
    from sqlalchemy import func, select

    from lms.extensions import db
    from lms.records.models import TrainingRecord
    from lms.records.services import to_local

    with app.app_context():
        earliest = select(TrainingRecord.earned_at).order_by(TrainingRecord.earned_at)
        first = db.session.execute(earliest.limit(1)).scalar()
        nth = (db.session.execute(earliest.limit(1).offset(records - 1)).scalar()
               or db.session.execute(select(func.max(TrainingRecord.earned_at))).scalar() + timedelta(days=1))
        db.session.remove()
        db.engine.dispose()  # the children have the database to themselves
    return to_local(first).date(), to_local(nth).date() - timedelta(days=1)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--people", type=int, default=50_000)
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--xlsx-records", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--reuse", help="time again on the SQLite database a previous run left in this folder")
    parser.add_argument("--postgres", action="store_true", help="on a throw-away PostgreSQL database")
    parser.add_argument("--keep", action="store_true", help="keep the folder (the SQLite database) for --reuse")
    parser.add_argument("--child", choices=["csv", "summary", "xlsx"], help=argparse.SUPPRESS)
    parser.add_argument("--db", help=argparse.SUPPRESS)
    parser.add_argument("--tmp", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    parser.add_argument("--date-from", help=argparse.SUPPRESS)
    parser.add_argument("--date-to", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(args)

    tmp = Path(args.reuse) if args.reuse else Path(tempfile.mkdtemp(prefix="export-bench-"))
    with postgres_database() if args.postgres else nullcontext(None) as pg_url:
        db_url = pg_url or f"sqlite:///{tmp / 'bench.sqlite3'}"
        app = make_app(tmp, db_url, revision="0017" if pg_url else "heads")  # see county.upgrade
        if not args.reuse:
            from lms.extensions import db

            with app.app_context():
                started = time.perf_counter()
                seeded = seed_county(db, args.people, args.records)
                db.session.remove()
            upgrade(app)
            print(f"seeded {args.people} people, {seeded['records']} records in "
                  f"{time.perf_counter() - started:.0f} s ({'PostgreSQL' if pg_url else tmp})")
        window = xlsx_window(app, args.xlsx_records)
        out = tmp / "out"
        out.mkdir(exist_ok=True)
        results = {}
        for _ in range(args.repeat):  # interleaved, so a burst of load hits both sides alike
            for label, run_case in [
                ("detail CSV (ours)", lambda: ours("csv", db_url, tmp, out / "ours.csv")),
                ("detail CSV (database)", lambda: theirs(DETAIL_SQL, db_url, bool(pg_url), out / "theirs.csv")),
                ("summary CSV (ours)", lambda: ours("summary", db_url, tmp, out / "ours-summary.csv")),
                ("summary GROUP BY (database)", lambda: theirs(SUMMARY_SQL, db_url, bool(pg_url), out / "theirs-summary.csv")),
                ("XLSX (ours)", lambda: ours("xlsx", db_url, tmp, out / "ours.xlsx", *window)),
            ]:
                results.setdefault(label, []).append(run_case())
        report({label: best(runs) for label, runs in results.items()}, "PostgreSQL (psql \\copy)" if pg_url else
               "SQLite (sqlite3 -csv)")
    if not args.keep and not args.reuse:
        shutil.rmtree(tmp, ignore_errors=True)
    elif args.keep:
        print(f"kept in {tmp} (--reuse {tmp})")


def report(results: dict, database: str) -> None:
    print(f"{database}; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores; best of the runs")
    print(f"{'case':30} {'rows':>9} {'MB out':>7} {'wall s':>7} {'CPU s':>7} {'peak MB':>8} {'app MB':>7}")
    for label, figures in results.items():
        rows = figures.get("rows", "")
        size = f"{figures['bytes'] / 1e6:7.1f}" if "bytes" in figures else " " * 7
        resting = f"{figures['resting_kb'] / 1024:7.0f}" if "resting_kb" in figures else ""
        peak = f"{figures['peak_kb'] / 1024:8.0f}" if "peak_kb" in figures else " " * 8
        print(f"{label:30} {rows:>9} {size} {figures['wall']:7.2f} {figures['cpu']:7.2f} {peak} {resting}")
    for name, ours_label, theirs_label in (("detail CSV", "detail CSV (ours)", "detail CSV (database)"),
                                           ("summary", "summary CSV (ours)", "summary GROUP BY (database)")):
        a, b = results[ours_label], results[theirs_label]
        print(f"{name}: ours / database = {a['wall'] / b['wall']:.2f}× wall-clock, {a['cpu'] / b['cpu']:.2f}× CPU "
              f"(target ≤ 2×)")
    xlsx, summary = results["XLSX (ours)"], results["summary CSV (ours)"]
    print(f"XLSX of {xlsx['rows']} records: {xlsx['wall']:.1f} s, peak {xlsx['peak_kb'] / 1024:.0f} MB "
          f"(the app alone {xlsx['resting_kb'] / 1024:.0f} MB) — target ≤ 10 s, < 200 MB")
    print(f"summary: peak {summary['peak_kb'] / 1024:.0f} MB (the app alone {summary['resting_kb'] / 1024:.0f} MB)"
          " — target < 200 MB")


if __name__ == "__main__":
    main()
