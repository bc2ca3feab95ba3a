#!/usr/bin/env python3
"""The people list (/admin/people) at county scale, beside a bare SELECT of one page.

    .venv/bin/python scripts/bench/people_list.py [--people 50000] [--runs 30]

Builds a temporary SQLite database through the real migrations (so the real indexes) with 2,000 units
(a county, 25 townships, 1,974 villages and classes) and `--people` people (Chinese names drawn from
common surnames and given names, so a name search matches hundreds; most with a phone number; a few
deactivated; the usual mix of audiences and roles); then times, in one run:

- bare: `SELECT … FROM user ORDER BY id LIMIT 50` — the floor of any page of people;
- the whole /admin/people page through the test client (query, count, throttle lookup, rendering) for
  the county admin and a township's unit admin: the first page, searches by part of a name, by 账号
  and by part of a phone number, filters by unit (with its subtree), audience, role and state, a
  combination, a page deep in the list (keyset) and a search that matches nobody.

Prints p50/p95 in ms and each p95's ratio to the bare SELECT's p95. The target: every p95 ≤ 300 ms.
"""
from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import quote

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from console_home import p95, timed  # noqa: E402,F401  (one way to time; unit_tree.py takes them from here)

SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈姚卢"
GIVEN = "桂兰秀英玉珍建国建华志强永红国平德明淑芬海燕丽华春梅文华金凤小军家明学文俊杰子涵欣怡浩然宇轩雨桐晓东大富福贵"


def seed(db, people: int) -> dict:
    rng = random.Random(11)
    created = datetime.now(timezone.utc).replace(tzinfo=None).strftime("%Y-%m-%d %H:%M:%S")
    conn = db.engine.raw_connection()
    cur = conn.cursor()
    units = [(1, "county", "垫江县", "county", None, "/county/")]
    towns = []
    for t in range(25):
        uid = len(units) + 1
        units.append((uid, f"town-{t}", f"镇{t}", "township", 1, f"/county/town-{t}/"))
        towns.append((uid, f"/county/town-{t}/"))
    leaves = []
    while len(units) < 2000:
        uid = len(units) + 1
        town_id, town_path = towns[uid % len(towns)]
        kind = "class" if uid % 10 == 0 else "village"
        code = f"{kind[0]}-{uid}"
        units.append((uid, code, f"{'班' if kind == 'class' else '村'}{uid}", kind, town_id, f"{town_path}{code}/"))
        leaves.append(uid)
    cur.executemany("INSERT INTO unit (id, code, name, kind, parent_id, path, active, created_at) "
                    "VALUES (?, ?, ?, ?, ?, ?, 1, ?)", [u + (created,) for u in units])
    audiences = ["elder"] * 4 + ["farmer"] * 4 + ["cadre", "worker", "youth"]
    rows = [(1, "admin", "县管理员", "x", "admin", "cadre", 1, 1, 0, created, None, 0),
            (2, "ua-town", "镇管理员", "x", "unit_admin", "cadre", towns[0][0], 1, 0, created, None, 0)]
    for uid in range(3, people + 1):
        name = rng.choice(SURNAMES) + "".join(rng.choice(GIVEN) for _ in range(rng.choice((1, 2))))
        role = rng.choices(["learner", "instructor", "unit_admin"], [97, 2, 1])[0]
        phone = f"1{rng.choice('3578')}{rng.randrange(10 ** 9):09d}" if rng.random() < 0.7 else None
        rows.append((uid, f"u{uid}", name, "x", role, rng.choice(audiences), rng.choice(leaves),
                     0 if rng.random() < 0.03 else 1, 0, created, phone, 0))
    cur.executemany('INSERT INTO "user" (id, username, full_name, password_hash, role, audience, unit_id, active, '
                    "session_version, created_at, phone, must_change_password) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    rows)
    conn.commit()
    cur.execute("ANALYZE")
    conn.close()
    middle = sorted((r[2], r[0]) for r in rows)[people // 2]
    return {"village": units[100][1], "town": "town-3", "deep": middle,
            "phone": next(r[10] for r in rows[1000:] if r[10])[3:9]}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--people", type=int, default=50_000)
    parser.add_argument("--runs", type=int, default=30)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="people-bench-"))
    os.environ["LMS_INSTANCE_DIR"] = str(tmp / "instance")
    from flask_migrate import upgrade
    from sqlalchemy import text

    from lms import create_app
    from lms.extensions import db

    app = create_app({"SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp / 'bench.sqlite3'}", "DATA_DIR": str(tmp / "data"),
                      "SECRET_KEY": "bench", "WTF_CSRF_ENABLED": False})
    with app.app_context():
        upgrade(revision="heads")
        started = time.perf_counter()
        seen = seed(db, args.people)
        print(f"seeded {args.people} people in 2000 units in {time.perf_counter() - started:.0f} s")
        db.session.remove()

    from flask_login import FlaskLoginClient

    app.test_client_class = FlaskLoginClient
    deep_name, deep_id = seen["deep"]
    cases = [
        ("admin", "", "first page (county admin)"),
        ("admin", "q=" + quote("桂兰"), "search part of a name"),
        ("admin", "q=" + quote("王"), "search one common character"),
        ("admin", "q=u4242", "search 账号"),
        ("admin", "q=" + seen["phone"], "search part of a phone"),
        ("admin", "q=" + quote("没有这个人"), "search matching nobody"),
        ("admin", f"unit={seen['town']}", "filter a township's subtree"),
        ("admin", f"unit={seen['village']}", "filter a village"),
        ("admin", "audience=cadre", "filter audience"),
        ("admin", "role=unit_admin", "filter role (rare)"),
        ("admin", "active=0", "filter deactivated"),
        ("admin", f"unit={seen['town']}&audience=elder&q=" + quote("兰"), "township + audience + search"),
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
    floor = p95(results["bare SELECT of one page of people"])
    print(f"{'case':40} {'p50 ms':>8} {'p95 ms':>8} {'p95/bare':>9}")
    for label, samples in results.items():
        print(f"{label:40} {statistics.median(samples):8.1f} {p95(samples):8.1f} {p95(samples) / floor:9.0f}")


if __name__ == "__main__":
    main()
