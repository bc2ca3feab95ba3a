"""A process that has not searched, exported or drawn a certificate holds none of the heavy libraries
(issue 12, memory): jieba's dictionary alone is ~70 MB, jieba.analyse ~100 MB. Each is imported inside
the function that uses it; a module-level import of one of them anywhere in the app fails here.
(gunicorn's master loads jieba and fpdf2 on purpose, once, for its workers to share: lms/preload.py.)

Start-up (issue 12: `import wsgi` ≤ 1 s) leaves out what only some processes need: Flask-Migrate and alembic
(migration commands), huey with redis and psycopg (the job queue: enqueueing, /healthz, `lms worker`),
the package importer and yaml (imports). A web process serving its usual pages loads none of them."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("jieba", "openpyxl", "xlsxwriter", "fpdf", "fontTools", "segno", "PIL", "whoosh")
# made lazy for start-up: each is imported where it is used (lms/extensions.py LazyMigrate, lms/jobs)
LAZY = ("alembic", "flask_migrate", "mako", "huey", "redis", "psycopg", "yaml", "lms.courses.importer")

PROBE = textwrap.dedent('''
    import json, sys
    from lms import create_app
    from lms.extensions import db

    app = create_app({"SQLALCHEMY_DATABASE_URI": sys.argv[1], "DATA_DIR": sys.argv[2], "SECRET_KEY": "lean"})
    with app.app_context():
        db.create_all()
    loaded = {"created": sorted(m for m in json.loads(sys.argv[3]) if m in sys.modules)}
    with app.test_client() as client:
        for path in json.loads(sys.argv[4]):
            assert client.get(path).status_code == 200, path
            loaded[path] = sorted(m for m in json.loads(sys.argv[3]) if m in sys.modules)
    print(json.dumps(loaded))
''')


def probe(tmp_path, *paths) -> dict:
    env = {**os.environ, "LMS_INSTANCE_DIR": str(tmp_path / "instance"), "LMS_DATA_DIR": str(tmp_path / "data")}
    out = subprocess.run([sys.executable, "-c", PROBE, f"sqlite:///{tmp_path / 'lean.sqlite3'}", str(tmp_path / "data"),
                          json.dumps(HEAVY), json.dumps(paths)],
                         cwd=str(ROOT), env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_creating_the_app_and_showing_the_catalogue_loads_no_heavy_library(tmp_path):
    loaded = probe(tmp_path, "/", "/login", "/help/elder")
    assert loaded == {"created": [], "/": [], "/login": [], "/help/elder": []}


def test_the_first_search_loads_jieba_and_whoosh(tmp_path):
    """The probe above would see a heavy import: a search is where jieba comes in."""
    loaded = probe(tmp_path, "/", "/search?q=防范电信诈骗")
    assert loaded["/"] == []
    assert {"jieba", "whoosh"} <= set(loaded["/search?q=防范电信诈骗"])
    assert "openpyxl" not in loaded["/search?q=防范电信诈骗"]


def test_words_are_cut_as_jiebas_own_chinese_tokenizer_cuts_them(tmp_path):
    """lms/search/analyzer.py tokenizes as jieba.analyse's ChineseTokenizer (not imported: ~100 MB)."""
    from jieba.analyse.analyzer import STOP_WORDS, ChineseTokenizer

    from lms.search import analyzer

    text = "视频通话与防范电信诈骗：AI 换脸, a 碳达峰碳中和 2030 年。"
    analyzer.ensure_jieba(str(tmp_path))
    ours = [(t.text, t.startchar, t.endchar) for t in analyzer.JiebaTokenizer()(text)]
    theirs = [(t.text, t.startchar, t.endchar) for t in ChineseTokenizer()(text)]
    assert ours == theirs and ("视频通话", 0, 4) in ours
    assert analyzer.STOP_WORDS == STOP_WORDS


PAGES_PROBE = textwrap.dedent('''
    import json, re, sys
    from lms import create_app

    url, data_dir, username, password, watched, pages, lesson_id = sys.argv[1:8]
    watched = json.loads(watched)
    app = create_app({"SQLALCHEMY_DATABASE_URI": url, "DATA_DIR": data_dir, "SECRET_KEY": "lean"})
    loaded = {"created": sorted(m for m in watched if m in sys.modules)}
    with app.test_client() as client:
        token = re.search(r'name="csrf_token" (?:type="hidden" )?value="([^"]+)"', client.get("/login").text).group(1)
        signed_in = client.post("/login", data={"username": username, "password": password, "csrf_token": token})
        assert signed_in.status_code == 302, signed_in.text[:2000]
        for path in json.loads(pages):
            page = client.get(path)
            assert page.status_code == 200, (path, page.status_code)
            loaded[path] = sorted(m for m in watched if m in sys.modules)
        token = re.search(r'name="csrf-token" content="([^"]+)"', page.text).group(1)
        for position in (0, 2):
            beat = client.post(f"/api/lessons/{lesson_id}/heartbeat", headers={"X-CSRFToken": token},
                               json={"intervals": [[0, position]] if position else [], "position": position})
            assert beat.status_code == 200, beat.text[:2000]
        loaded["heartbeat"] = sorted(m for m in watched if m in sys.modules)
    print(json.dumps(loaded))
''')


def test_a_web_process_serving_catalogue_lesson_and_heartbeats_loads_none_of_the_lazy_modules(app, course, make_user,
                                                                                               tmp_path):
    """What a county admin sees as memory in each web worker: the catalogue, a course, a lesson page (with its
    video) and the player's heartbeats load no migration tool, no job queue (nor redis, nor psycopg on SQLite),
    no importer, no heavy library."""
    from lms.extensions import db

    lesson = course.active_lessons[0]
    learner = make_user(audience="elder", password="lean-pages-9")
    pages = ["/", f"/courses/{course.slug}", f"/courses/{course.slug}/lessons/{lesson.slug}"]
    facts = (app.config["SQLALCHEMY_DATABASE_URI"], app.config["DATA_DIR"], learner.username, "lean-pages-9")
    lesson_id = lesson.id
    db.session.remove()
    env = {**os.environ, "LMS_INSTANCE_DIR": str(tmp_path / "instance"), "LMS_DATA_DIR": app.config["DATA_DIR"]}
    out = subprocess.run([sys.executable, "-c", PAGES_PROBE, *facts, json.dumps(HEAVY + LAZY), json.dumps(pages),
                          str(lesson_id)], cwd=str(ROOT), env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-3000:]
    loaded = json.loads(out.stdout.strip().splitlines()[-1])
    assert loaded == {"created": [], **{path: [] for path in pages}, "heartbeat": []}


def test_the_migration_commands_and_the_job_queue_come_when_asked(tmp_path):
    """Lazy, not gone: `lms db` runs alembic's migrations, and the queue, made on first use, is this app's."""
    script = textwrap.dedent('''
        import json, sys
        from lms import create_app, jobs

        app = create_app({"SQLALCHEMY_DATABASE_URI": sys.argv[1], "DATA_DIR": sys.argv[2], "SECRET_KEY": "lean"})
        before = sorted(m for m in ("alembic", "huey") if m in sys.modules)
        upgraded = app.test_cli_runner().invoke(args=["db", "upgrade", "heads"])
        help_text = app.test_cli_runner().invoke(args=["db", "--help"]).output
        with app.app_context():
            from lms.doctor import migrations

            at_head = migrations().ok  # what `lms doctor` says: the database at alembic's head
            state = jobs.queue_state()
            jobs.enqueue_search_update([1])
            pending = jobs.huey.pending_count()
            jobs.huey.flush()
        print(json.dumps({"before": before, "upgrade": upgraded.exit_code, "at_head": at_head,
                          "help": help_text, "state": state, "pending": pending,
                          "queue": jobs.huey.storage.filename, "task": jobs.update_search.task_class.__module__}))
    ''')
    env = {**os.environ, "LMS_INSTANCE_DIR": str(tmp_path / "instance"), "LMS_DATA_DIR": str(tmp_path / "elsewhere")}
    env.pop("LMS_REDIS_URL", None)
    out = subprocess.run([sys.executable, "-c", script, f"sqlite:///{tmp_path / 'db.sqlite3'}", str(tmp_path / "data")],
                         cwd=str(ROOT), env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-3000:]
    facts = json.loads(out.stdout.strip().splitlines()[-1])
    assert facts["before"] == [] and facts["upgrade"] == 0
    assert facts["at_head"] is True and "upgrade" in facts["help"] and "downgrade" in facts["help"]
    assert facts["state"]["ok"] and facts["state"]["backend"] == "SqliteStorage" and facts["pending"] == 1
    assert facts["queue"] == str(tmp_path / "data" / "jobs.sqlite3")  # the app's DATA_DIR, not LMS_DATA_DIR
    assert facts["task"] == "lms.jobs"  # task names as queued by earlier versions: lms.jobs.update_search


def test_url_for_builds_every_route_as_werkzeug_does(tmp_path):
    """lms/routing.py compiles url_for's builders at first use: every rule builds the same URL as a plain
    werkzeug Rule, with and without extra query arguments, the first time and the next."""
    from werkzeug.routing import Map, Rule

    from lms import create_app
    from lms.routing import LazyBuildRule

    app = create_app({"SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'db.sqlite3'}", "DATA_DIR": str(tmp_path),
                      "SECRET_KEY": "lean"})
    rules = list(app.url_map.iter_rules())
    assert len(rules) > 100 and all(isinstance(rule, LazyBuildRule) for rule in rules if rule.endpoint != "static")
    reference = Map([Rule(rule.rule, **rule.get_empty_kwargs()) for rule in rules], converters=app.url_map.converters)
    ours, theirs = app.url_map.bind("kepu.example"), reference.bind("kepu.example")
    for rule in rules:
        values = {name: 7 for name in rule.arguments if name not in (rule.defaults or {})}
        for extra in ({}, {"lang": "en", "q": "防范 诈骗/&"}):
            for append_unknown in (True, False, True):
                built = ours.build(rule.endpoint, {**values, **extra}, method=sorted(rule.methods)[0],
                                   append_unknown=append_unknown)
                expected = theirs.build(rule.endpoint, {**values, **extra}, method=sorted(rule.methods)[0],
                                        append_unknown=append_unknown)
                assert built == expected, (rule.rule, extra, append_unknown)
