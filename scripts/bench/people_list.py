#!/usr/bin/env python3
"""The people list (/admin/people) at county scale, beside a bare SELECT of one page.

    .venv/bin/python scripts/bench/people_list.py [--people 50000] [--runs 30]

Builds a temporary SQLite database through the real migrations (so the real indexes) with the benches'
county (scripts/bench/county.py, without ledger records: 2,000 units — a county, 25 townships, 1,974
villages and classes — and `--people` people: Chinese names drawn from common surnames and given names,
so a name search matches hundreds; most with a phone number; a few deactivated; the usual mix of
audiences and roles); then times, in one run:

- bare: `SELECT … FROM user ORDER BY id LIMIT 50` — the floor of any page of people;
- the whole /admin/people page through the test client (query, count, throttle lookup, rendering) for
  the county admin and a township's unit admin: the first page, searches by part of a name, by 账号
  and by part of a phone number, filters by unit (with its subtree), audience, role and state, a
  combination, a page deep in the list (keyset) and a search that matches nobody.

Prints p50/p95 in ms and each p95's ratio to the bare SELECT's p95. The target: every p95 ≤ 300 ms.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from urllib.parse import quote

sys.path.insert(0, str(Path(__file__).resolve().parent))

from county import print_table, seeded_app, timed  # noqa: E402  (the benches' one county)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--people", type=int, default=50_000)
    parser.add_argument("--runs", type=int, default=30)
    args = parser.parse_args()
    app, seen = seeded_app("people-bench-", args.people)
    from sqlalchemy import text

    from lms.extensions import db

    deep_name, deep_id = seen["deep"]
    cases = [
        ("admin", "", "first page (county admin)"),
        ("admin", "q=" + quote("桂兰"), "search part of a name"),
        ("admin", "q=" + quote("王"), "search one common character"),
        ("admin", "q=u4242", "search 账号"),
        ("admin", "q=" + seen["phone"], "search part of a phone"),
        ("admin", "q=" + quote("没有这个人"), "search matching nobody"),
        ("admin", f"unit={seen['town_code']}", "filter a township's subtree"),
        ("admin", f"unit={seen['village_code']}", "filter a village"),
        ("admin", "audience=cadre", "filter audience"),
        ("admin", "role=unit_admin", "filter role (rare)"),
        ("admin", "active=0", "filter deactivated"),
        ("admin", f"unit={seen['town_code']}&audience=elder&q=" + quote("兰"), "township + audience + search"),
        ("admin", f"after_name={quote(deep_name)}&after_id={deep_id}", "a page half-way down (keyset)"),
        ("ua-town", "", "first page (township unit admin)"),
        ("ua-town", "q=" + quote("桂"), "search (township unit admin)"),
    ]
    results = {}
    with app.app_context():
        from lms.accounts.models import User

        bare = text('SELECT id, username, full_name, unit_id FROM "user" ORDER BY id LIMIT 50')
        results["bare SELECT of one page of people"] = timed(lambda: db.session.execute(bare).all(), args.runs)
        for username, query, label in cases:
            client = app.test_client(user=User.query.filter_by(username=username).one())

            def get(client=client, query=query):
                response = client.get(f"/admin/people?{query}")
                assert response.status_code == 200, (query, response.status_code)

            results[label] = timed(get, args.runs)
    print_table(results, "bare SELECT of one page of people")


if __name__ == "__main__":
    main()
