#!/usr/bin/env python3
"""The unit tree (/admin/units) at county scale, beside a bare SELECT of the units.

    .venv/bin/python scripts/bench/unit_tree.py [--people 50000] [--runs 30]

Builds a temporary SQLite database through the real migrations with the people list's county
(scripts/bench/people_list.py: 2,000 units — a county, 25 townships, 1,974 villages and classes — and
`--people` people in them), then times, in one run:

- bare: `SELECT id, code, name, kind, active, parent_id FROM unit` — the floor of any tree;
- `unit_tree()` alone (the units query, the people-count GROUP BY, nesting and totals in Python);
- the whole /admin/units page through the test client (both queries, rendering 2,000 nested units)
  for the county admin, with every level open (?expand=1), and for one township's unit admin.

Prints p50/p95 in ms of wall-clock and of CPU time (this process's own work: on a machine shared with
other jobs the wall-clock includes waiting for a core), each p95's ratio to the bare SELECT's, and the
page's size. Target: the county admin's page p95 ≤ 300 ms.
"""
from __future__ import annotations

import argparse
import gzip
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from people_list import p95, seed  # noqa: E402  (one county for both benches)


def timed(fn, runs: int) -> tuple[list[float], list[float]]:
    """Wall-clock and CPU milliseconds of each run (after one warm-up). CPU time is this process's own
    work: on a shared machine it leaves out the time spent waiting for a core."""
    fn()
    wall, cpu = [], []
    for _ in range(runs):
        start, start_cpu = time.perf_counter(), time.process_time()
        fn()
        wall.append((time.perf_counter() - start) * 1000)
        cpu.append((time.process_time() - start_cpu) * 1000)
    return wall, cpu


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--people", type=int, default=50_000)
    parser.add_argument("--runs", type=int, default=30)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="unit-tree-bench-"))
    os.environ["LMS_INSTANCE_DIR"] = str(tmp / "instance")
    from flask_login import FlaskLoginClient
    from flask_migrate import upgrade
    from sqlalchemy import text

    from lms import create_app
    from lms.extensions import db

    app = create_app({"SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp / 'bench.sqlite3'}", "DATA_DIR": str(tmp / "data"),
                      "SECRET_KEY": "bench", "WTF_CSRF_ENABLED": False})
    app.test_client_class = FlaskLoginClient
    with app.app_context():
        upgrade(revision="heads")
        started = time.perf_counter()
        seed(db, args.people)
        print(f"seeded {args.people} people in 2000 units in {time.perf_counter() - started:.0f} s")
        db.session.remove()

    results, sizes = {}, {}
    with app.app_context():
        from lms.accounts.models import User
        from lms.accounts.units import unit_tree

        admin = User.query.filter_by(username="admin").one()
        bare = text("SELECT id, code, name, kind, active, parent_id FROM unit")
        results["bare SELECT of the 2,000 units"] = timed(lambda: db.session.execute(bare).all(), args.runs)
        results["unit_tree() (2 queries + nesting)"] = timed(lambda: unit_tree(admin), args.runs)
        viewers = {name: User.query.filter_by(username=name).one() for name in ("admin", "ua-town")}
        clients = {name: app.test_client(user=user) for name, user in viewers.items()}
        db.session.remove()
    # requests outside the app context above, each with its own `g` (else Flask-Login's cached user leaks
    # from one client to the next)
    for username, query, label in [("admin", "", "/admin/units, county admin"),
                                   ("admin", "?expand=1", "/admin/units?expand=1 (all open)"),
                                   ("ua-town", "", "/admin/units, township unit admin")]:
        def get(client=clients[username], query=query, label=label):
            response = client.get(f"/admin/units{query}")
            assert response.status_code == 200, response.status_code
            sizes[label] = response.data

        results[label] = timed(get, args.runs)
    floor, floor_cpu = (p95(samples) for samples in results["bare SELECT of the 2,000 units"])
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    print(f"{'case':38} {'p50 ms':>7} {'p95 ms':>7} {'p95/bare':>8} {'CPU p50':>8} {'CPU p95':>8} {'/bare':>6}"
          f" {'page KB':>8} {'gzip KB':>8}")
    for label, (wall, cpu) in results.items():
        page = sizes.get(label)
        size = f"{len(page) / 1024:8.0f} {len(gzip.compress(page)) / 1024:8.0f}" if page else ""
        print(f"{label:38} {statistics.median(wall):7.1f} {p95(wall):7.1f} {p95(wall) / floor:8.1f}"
              f" {statistics.median(cpu):8.1f} {p95(cpu):8.1f} {p95(cpu) / floor_cpu:6.1f} {size}")


if __name__ == "__main__":
    main()
