#!/usr/bin/env python3
"""The dashboard (/admin/dashboard, 统计图表) at county scale, beside a bare SELECT (issue 11: p95 ≤ 1 s).

    .venv/bin/python scripts/bench/dashboard.py [--users 50000] [--records 1000000] [--runs 15] [--verify]
    .venv/bin/python scripts/bench/dashboard.py --reuse /tmp/dashboard-bench-XXXX   # time again, no seeding
    .venv/bin/python scripts/bench/dashboard.py --postgres   # on a throw-away PostgreSQL database instead

Seeds the benches' county (scripts/bench/county.py: 2,000 units, `--users` people, `--records` ledger rows
over this year and last, offline records and corrections among them) into a SQLite database built by the
real migrations — so the rollup triggers of migration 0018 fill ledger_user_year and ledger_course_year
as the rows go in, as they would in production. Then times, in one run, this year's page:

- bare: one page of the ledger (`SELECT … ORDER BY id DESC LIMIT 50`) — the floor of any page;
- the whole page (every query and the rendering) for the county admin, the county admin with an audience
  filter, a township's unit admin, the county admin drilling into a township, and a village (a leaf: its
  people list); a CSV table (units) for the county;
- for reference, what the per-person rollup saves: the year's ledger summed per person (GROUP BY user_id).

It prints p50/p95 in ms, each p95's ratio to the bare SELECT's p95, and whether each page's p95 is within
1 s. `--verify` also checks the rollups equal a full recount of the seeded ledger.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from county import make_app, p95, postgres_database, print_table, seed_county, timed  # noqa: E402  (the benches' one county)

LIMIT_MS = 1000


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--users", type=int, default=50_000)
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--reuse", help="time again on the database a previous run left in this folder")
    parser.add_argument("--verify", action="store_true", help="check the rollups equal a full recount")
    parser.add_argument("--postgres", action="store_true", help="on a throw-away PostgreSQL database (dropped after)")
    args = parser.parse_args()
    if args.postgres:
        with postgres_database() as url:
            run(args, url)
    else:
        run(args)


def run(args, database_uri: str | None = None):
    tmp = Path(args.reuse) if args.reuse else Path(tempfile.mkdtemp(prefix="dashboard-bench-"))
    app = make_app(tmp, database_uri)
    from sqlalchemy import DateTime, bindparam, text

    from lms.extensions import db

    if not args.reuse:
        with app.app_context():
            started = time.perf_counter()
            seeded = seed_county(db, args.users, args.records)
            print(f"seeded {args.users} people, {seeded['records']} records in {time.perf_counter() - started:.0f} s "
                  f"(rollup triggers included) in {tmp}")
            db.session.remove()
            db.engine.dispose()  # the loader leaves its PostgreSQL connection in autocommit: not for the pages

    results = {}
    with app.app_context():
        from lms.accounts.models import Unit, User, utcnow
        from lms.records.services import to_local, year_bounds_utc

        year = to_local(utcnow()).year
        bare = text("SELECT id, user_id, hours, earned_at FROM training_record ORDER BY id DESC LIMIT 50")
        results["bare SELECT of one ledger page"] = timed(lambda: db.session.execute(bare).all(), args.runs)
        start, end = year_bounds_utc(year)
        per_person = text("SELECT user_id, sum(hours) FROM training_record WHERE earned_at >= :s AND earned_at < :e "
                          "GROUP BY user_id").bindparams(bindparam("s", type_=DateTime()), bindparam("e", type_=DateTime()))
        results["(reference) the year's ledger per person, no rollup"] = timed(
            lambda: db.session.execute(per_person, {"s": start, "e": end}).all(), max(3, args.runs // 3))
        users = {user.username: user for user in User.query.filter(User.id <= 4)}
        town = db.session.get(Unit, users["ua-town"].unit_id).code
        village = db.session.get(Unit, users["ua-village"].unit_id).code
        if args.verify:
            from lms.records import rollups

            started = time.perf_counter()
            same = rollups.stored() == rollups.recount()
            print(f"rollups equal a full recount: {same} ({time.perf_counter() - started:.0f} s)")
            if not same:
                sys.exit(1)
        db.session.expunge_all()
    cases = [("admin", "/admin/dashboard", "/admin/dashboard (county admin)"),
             ("admin", "/admin/dashboard?audience=cadre", "/admin/dashboard?audience=cadre (county admin)"),
             ("ua-town", "/admin/dashboard", "/admin/dashboard (township unit admin)"),
             ("admin", f"/admin/dashboard?unit={town}", "/admin/dashboard?unit=<township> (county admin)"),
             ("ua-village", "/admin/dashboard", "/admin/dashboard (village unit admin: people list)"),
             ("admin", "/admin/dashboard.csv?table=units", "/admin/dashboard.csv?table=units (county)")]
    pages = []
    for username, path, label in cases:  # each request in its own app context, as in production
        client = app.test_client(user=users[username])

        def get(client=client, path=path):
            response = client.get(path)
            assert response.status_code == 200, (path, response.status_code)
            assert response.data  # streamed CSV: read it all

        results[label] = timed(get, args.runs)
        pages.append(label)
    print(f"year {year}; township {town}, village {village}")
    print_table(results, "bare SELECT of one ledger page")
    late = [label for label in pages if p95(results[label]) > LIMIT_MS]
    print(f"p95 within {LIMIT_MS} ms: " + ("all pages" if not late else "NOT " + ", ".join(late)))


if __name__ == "__main__":
    main()
