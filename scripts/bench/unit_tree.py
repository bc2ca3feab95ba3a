#!/usr/bin/env python3
"""The unit tree (/admin/units) at county scale, beside a bare SELECT of the units.

    .venv/bin/python scripts/bench/unit_tree.py [--people 50000] [--runs 30]

Builds a temporary SQLite database through the real migrations with the benches' county
(scripts/bench/county.py, without ledger records: 2,000 units — a county, 25 townships, 1,974 villages
and classes — and `--people` people in them), then times, in one run:

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
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from county import p95, seeded_app  # noqa: E402  (the benches' one county)
from county import timed_cpu as timed  # noqa: E402


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--people", type=int, default=50_000)
    parser.add_argument("--runs", type=int, default=30)
    args = parser.parse_args()
    app, _seen = seeded_app("unit-tree-bench-", args.people)
    from sqlalchemy import text

    from lms.extensions import db

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
