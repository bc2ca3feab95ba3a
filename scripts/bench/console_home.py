#!/usr/bin/env python3
"""The console's home (/admin) and audit log (/admin/audit) at county scale, beside a bare SELECT.

    .venv/bin/python scripts/bench/console_home.py [--users 50000] [--records 1000000] [--runs 15]
    .venv/bin/python scripts/bench/console_home.py --reuse /tmp/console-bench-XXXX   # time again, no seeding

Builds a temporary SQLite database through the real migrations (so the real indexes) with the benches'
county (scripts/bench/county.py: 2,000 units, `--users` people, `--records` ledger rows over this year
and last, each person completing distinct courses of 60) and what the home reads besides (a progress
row with a heartbeat in the last 60 days for every other person, 10 assignments and 200,000 audit
rows); then times, in one run:

- bare: one page of the ledger (`SELECT … ORDER BY id DESC LIMIT 50`) — the floor of any page;
- the whole /admin page (figures, chart, 待办) for the county admin, a township's and a village's
  unit admin and an instructor, through the test client (rendering included);
- /admin/audit: the first page, a page filtered by an action prefix, and a unit admin's page.

It prints p50/p95 in ms and each p95's ratio to the bare SELECT's p95.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from county import make_app, print_table, seed_county, timed  # noqa: E402  (the benches' one county)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--users", type=int, default=50_000)
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--reuse", help="time again on the database a previous run left in this folder")
    args = parser.parse_args()
    tmp = Path(args.reuse) if args.reuse else Path(tempfile.mkdtemp(prefix="console-bench-"))
    app = make_app(tmp)
    from sqlalchemy import text

    from lms.extensions import db

    if not args.reuse:
        with app.app_context():
            started = time.perf_counter()
            seed_county(db, args.users, args.records, activity=True)
            print(f"seeded {args.users} people, {args.records} records in {time.perf_counter() - started:.0f} s "
                  f"in {tmp}")
            db.session.remove()

    results = {}
    with app.app_context():
        from lms.accounts.models import User

        bare = text("SELECT id, user_id, hours, earned_at FROM training_record ORDER BY id DESC LIMIT 50")
        results["bare SELECT of one ledger page"] = timed(lambda: db.session.execute(bare).all(), args.runs)
        users = {user.username: user for user in User.query.filter(User.id <= 4)}
        db.session.expunge_all()
    cases = [("admin", "/admin", "/admin (county admin)"), ("ua-town", "/admin", "/admin (township unit admin)"),
             ("ua-village", "/admin", "/admin (village unit admin)"), ("teacher", "/admin", "/admin (instructor)"),
             ("admin", "/admin/audit", "/admin/audit first page (admin)"),
             ("admin", "/admin/audit?action=unit.", "/admin/audit action prefix (admin)"),
             ("ua-town", "/admin/audit", "/admin/audit first page (township unit admin)")]
    for username, path, label in cases:  # each request in its own app context, as in production
        client = app.test_client(user=users[username])

        def get(client=client, path=path, name=users[username].full_name):
            response = client.get(path)
            assert response.status_code == 200, (path, response.status_code)
            assert name in response.get_data(as_text=True)  # signed in as the case's user

        results[label] = timed(get, args.runs)
    print_table(results, "bare SELECT of one ledger page")


if __name__ == "__main__":
    main()
