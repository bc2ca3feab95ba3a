#!/usr/bin/env python3
"""The quiz editor's per-question statistics at 100,000 attempts, beside a bare SELECT.

    .venv/bin/python scripts/bench/quiz_stats.py [--attempts 100000] [--pool 10] [--ask 5] [--runs 15]

Builds a temporary SQLite database through the real migrations (so the real indexes) with one quiz of
`--pool` single/multiple-choice questions drawing `--ask` per attempt, `--attempts` finished attempts by
as many learners (each answer committed as issue 9 stores it: one quiz_answer row per question drawn),
and a second quiz with as many attempts again (so the first quiz's rows are not the whole table), and
the tallies as submitting them would have left them; then times, in one run:

- bare: one attempt's answers (`SELECT … FROM quiz_answer WHERE attempt_id = ?`) — the floor of any page;
- `quiz_stats(quiz)` — the statistics page's queries (the two tallies, questions, choices);
- `tally_from_answers(quiz)` — the same per-question figures as one aggregate over the committed
  answers, for comparison (what a page computing them at each view would pay);
- the whole statistics page and the editor page (which counts answers per question) through the test
  client, rendering included.

It prints p50/p95 in ms and each p95's ratio to the bare SELECT's p95.
"""
from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from county import FMT, make_app, print_table, timed  # noqa: E402  (the shared app and timing helpers)


def seed(db, attempts: int, pool: int, ask: int) -> None:
    rng = random.Random(11)
    now = datetime.now(timezone.utc).replace(tzinfo=None)
    created = (now - timedelta(days=30)).strftime(FMT)
    conn = db.engine.raw_connection()
    cur = conn.cursor()
    cur.execute("INSERT INTO unit (id, code, name, kind, parent_id, path) VALUES (1, 'county', '垫江县', 'county', NULL, '/county/')")
    cur.executemany('INSERT INTO "user" (id, username, full_name, password_hash, role, audience, unit_id, active, '
                    "session_version, created_at) VALUES (?, ?, ?, 'x', ?, 'elder', 1, 1, 0, ?)",
                    [(1, "admin", "县管理员", "admin", created)] +
                    [(uid, f"u{uid}", f"学员{uid}", "learner", created) for uid in range(2, attempts + 2)])
    cur.execute("INSERT INTO course (id, slug, title, summary, credit_hours, mandatory, strict, watch_threshold, "
                "published, created_at, updated_at) VALUES (1, 'c', '防范电信诈骗', '', 1, 0, 0, 0.95, 1, ?, ?)",
                (created, created))
    cur.executemany("INSERT INTO lesson (id, course_id, slug, position, title, text_markdown, text_html, retired) "
                    "VALUES (?, 1, ?, ?, ?, '', '', 0)", [(1, "l1", 1, "冒充公检法"), (2, "l2", 2, "刷单返利")])
    question_id = choice_id = answer_id = 0
    attempt_id = 0
    for quiz_id in (1, 2):
        cur.execute("INSERT INTO quiz (id, lesson_id, pass_score, retired, ask) VALUES (?, ?, 60, 0, ?)",
                    (quiz_id, quiz_id, ask))
        kinds = {}
        for position in range(pool):
            question_id += 1
            kind = "multiple" if position % 3 == 2 else "single"
            kinds[position] = kind
            cur.execute("INSERT INTO question (id, quiz_id, position, sort_order, retired, kind, text, explanation) "
                        "VALUES (?, ?, ?, ?, 0, ?, ?, '解析')",
                        (question_id, quiz_id, position, position, kind, f"第{position + 1}题：怎么办？"))
            right = {0, 1} if kind == "multiple" else {1}
            for c in range(4):
                choice_id += 1
                cur.execute("INSERT INTO choice (id, question_id, position, text, correct) VALUES (?, ?, ?, ?, ?)",
                            (choice_id, question_id, c, f"选项{c}", int(c in right)))
        attempts_rows, answer_rows = [], []
        for n in range(attempts):
            attempt_id += 1
            drawn = sorted(rng.sample(range(pool), ask))
            answers, right_count = {}, 0
            for position in drawn:
                skill = 0.3 + 0.06 * position  # later questions are easier: a spread of shares right
                if kinds[position] == "multiple":
                    picked = [0, 1] if rng.random() < skill else rng.choice([[0], [0, 2], [1, 3], [0, 1, 2]])
                    correct = picked == [0, 1]
                else:
                    picked = [1] if rng.random() < skill else [rng.choice([0, 2, 3])]
                    correct = picked == [1]
                right_count += correct
                answers[str(position)] = picked
                answer_id += 1
                answer_rows.append((answer_id, attempt_id, position, json.dumps(picked), int(correct), created))
            score = round(100 * right_count / ask)
            draw = json.dumps([{"q": p, "c": [0, 1, 2, 3]} for p in drawn])
            attempts_rows.append((attempt_id, n + 2, quiz_id, score, int(score >= 60), json.dumps(answers), draw,
                                  created, created))
            if len(answer_rows) >= 100_000 or n == attempts - 1:
                cur.executemany("INSERT INTO quiz_attempt (id, user_id, quiz_id, score, passed, answers_json, "
                                "draw_json, created_at, finished_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", attempts_rows)
                cur.executemany("INSERT INTO quiz_answer (id, attempt_id, question_position, choices_json, correct, "
                                "created_at) VALUES (?, ?, ?, ?, ?, ?)", answer_rows)
                attempts_rows, answer_rows = [], []
    conn.commit()
    conn.close()
    # the tally as submitting these attempts would have left it (lms/quizzes/stats.py)
    from lms.quizzes.models import AnswerTally, ScoreTally
    from lms.quizzes.stats import scores_from_attempts, tally_from_answers

    db.session.execute(AnswerTally.__table__.insert(), [
        {"quiz_id": q, "question_position": p, "choices_json": c, "correct": ok, "answers": n}
        for q, p, c, ok, n in tally_from_answers()])
    db.session.execute(ScoreTally.__table__.insert(), [
        {"quiz_id": q, "score": score, "passed": ok, "attempts": n} for q, score, ok, n in scores_from_attempts()])
    db.session.commit()
    db.session.execute(db.text("ANALYZE"))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--attempts", type=int, default=100_000)
    parser.add_argument("--pool", type=int, default=10)
    parser.add_argument("--ask", type=int, default=5)
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="quiz-stats-bench-"))
    app = make_app(tmp)
    from sqlalchemy import text

    from lms.extensions import db

    with app.app_context():
        started = time.perf_counter()
        seed(db, args.attempts, args.pool, args.ask)
        print(f"seeded 2 quizzes × {args.attempts} attempts × {args.ask} answers in "
              f"{time.perf_counter() - started:.0f} s in {tmp}")
        db.session.remove()

    from lms.accounts.models import User
    from lms.quizzes import stats as quiz_stats
    from lms.quizzes.models import Quiz
    from lms.quizzes.stats import tally_from_answers

    results = {}
    with app.app_context():
        bare = text("SELECT question_position, choices_json, correct FROM quiz_answer WHERE attempt_id = :a")
        results["bare SELECT of one attempt's answers"] = timed(
            lambda: db.session.execute(bare, {"a": random.randint(1, args.attempts)}).all(), args.runs)

        def stats():
            db.session.expire_all()
            figures = quiz_stats.quiz_stats(db.session.get(Quiz, 1))
            assert figures.attempts == args.attempts and figures.answers == args.attempts * args.ask

        results["quiz_stats(quiz)"] = timed(stats, args.runs)
        results["tally_from_answers(quiz) (aggregate per view)"] = timed(lambda: tally_from_answers(1).all(), 5)
        shown = quiz_stats.quiz_stats(db.session.get(Quiz, 1)).questions
        admin = db.session.get(User, 1)
        db.session.expunge_all()
    client = app.test_client(user=admin)
    for path, label in (("/admin/quizzes/lessons/1/stats", "statistics page"),
                        ("/admin/quizzes/lessons/1", "editor page (answers per question)")):
        def get(path=path):
            response = client.get(path)
            assert response.status_code == 200, (path, response.status_code)

        results[label] = timed(get, args.runs)
    print_table(results, "bare SELECT of one attempt's answers")
    print("weakest first:", ", ".join(f"{s.question.text[:4]} {100 * s.share_right:.0f}%" for s in shown[:4]), "…")


if __name__ == "__main__":
    main()
