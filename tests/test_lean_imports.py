"""A process that has not searched, exported or drawn a certificate holds none of the heavy libraries
(issue 12, memory): jieba's dictionary alone is ~70 MB, jieba.analyse ~100 MB. Each is imported inside
the function that uses it; a module-level import of one of them anywhere in the app fails here.
(gunicorn's master loads jieba and fpdf2 on purpose, once, for its workers to share: lms/preload.py.)"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("jieba", "openpyxl", "xlsxwriter", "fpdf", "fontTools", "segno", "PIL", "whoosh")

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
