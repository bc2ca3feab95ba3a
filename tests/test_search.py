"""Search in Chinese: real queries against the demo content and a fixture corpus, what the page and
the JSON answer show, the published filter, odd queries, and several processes writing at once."""
from __future__ import annotations


import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml

from lms.extensions import db
from tests.conftest import BrowserLikeClient, _make_app, write_package

ROOT = Path(__file__).resolve().parent.parent
DEMO = ("anti-fraud", "smartphone-basics", "pomelo", "ai-frontier", "carbon-neutrality")
CAPTION_ONLY = "桂花广场"  # said in the fixture video at 0:02, written nowhere else


def write_fixture_course(root: Path, video: Path) -> Path:
    """An elder course whose text says 防止诈骗 and whose captions alone mention 桂花广场."""
    folder = root / "community-talk"
    (folder / "01-talk").mkdir(parents=True)
    (folder / "01-talk" / "lesson.md").write_text(
        "## 社区讲座\n\n街道民警来到社区，讲怎样防止诈骗，保护好自己的养老钱。\n", encoding="utf-8")
    (folder / "01-talk" / "video.mp4").write_bytes(video.read_bytes())
    (folder / "01-talk" / "captions.vtt").write_text(
        "WEBVTT\n\n00:00.000 --> 00:02.000\n欢迎大家来听讲座\n\n"
        f"00:02.000 --> 00:04.000\n下一次活动在{CAPTION_ONLY}举行\n", encoding="utf-8")
    course = {"id": "community-talk", "title": "社区民警讲座", "summary": "民警进社区。", "audiences": ["elder"], "credit_hours": 0.25,
              "lessons": [{"slug": "talk", "title": "民警来到社区", "text": "01-talk/lesson.md",
                           "video": "01-talk/video.mp4", "captions": "01-talk/captions.vtt"}]}
    (folder / "course.yaml").write_text(yaml.safe_dump(course, allow_unicode=True), encoding="utf-8")
    return folder


KEEP_VIDEO = {("smartphone-basics", "video-call")}


def demo_package(name: str, root: Path) -> Path:
    """A copy of a real demo package. Only the lessons in KEEP_VIDEO keep their slides (and so a video
    rendered from them, with captions): rendering every demo video would make this module take minutes."""
    import shutil

    folder = shutil.copytree(ROOT / "content" / name, root / name, ignore=shutil.ignore_patterns("*.mp4"))
    data = yaml.safe_load((folder / "course.yaml").read_text(encoding="utf-8"))
    for lesson in data["lessons"]:
        if (name, lesson["slug"]) not in KEEP_VIDEO:
            for key in ("video", "slides", "captions"):
                lesson.pop(key, None)
    (folder / "course.yaml").write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return folder


@pytest.fixture(scope="module")
def demo(tmp_path_factory, media_dir, test_video):
    """Demo courses and the fixture corpus, imported once for the module's read-only tests."""
    from lms.accounts.services import create_user, get_or_create_unit
    from lms.courses.importer import import_package
    from lms.search.index import update_courses

    tmp = tmp_path_factory.mktemp("search-demo")
    app = _make_app(tmp, data_dir=media_dir, SEARCH_DIR=str(tmp / "search"))
    with app.app_context():
        ids = [import_package(demo_package(name, tmp / "demo"))[0].id for name in DEMO]
        ids.append(import_package(write_fixture_course(tmp / "fixtures", test_video))[0].id)
        update_courses(ids)
        unit = get_or_create_unit("county", "垫江县", "county")
        for audience in ("elder", "farmer", "cadre"):
            create_user(f"{audience}1", f"{audience}1", "correct-horse", "learner", audience, unit.code)
        db.session.commit()
        yield app
        db.session.remove()
        db.engine.dispose()


def search(query, **kwargs):
    from lms.search.query import search as run

    return run(query, **kwargs)


def titles(result):
    return [hit.title for hit in result.hits]


def anonymous(app):
    """A fresh client. The module's app context stays pushed, so requests share its `g`, where
    Flask-Login caches the signed-in user and Flask-WTF the CSRF token: start it afresh."""
    from flask import g

    for name in list(vars(g)):
        g.pop(name, None)
    return app.test_client()


def signed_in(app, username):
    client = BrowserLikeClient(anonymous(app))
    assert client.login(username).status_code == 302
    return client


# --- what learners type ----------------------------------------------------------------------

def test_zhapian_finds_the_anti_fraud_lessons_first(demo):
    result = search("诈骗", user_audience="elder")
    anti_fraud = {h.lesson_slug for h in result.hits if h.course_slug == "anti-fraud" and h.kind == "lesson"}
    assert {"fake-police", "order-brushing", "pension-fraud"} <= anti_fraud
    assert result.hits[0].course_slug == "anti-fraud"
    assert all(h.course_slug in ("anti-fraud", "community-talk", "smartphone-basics") for h in result.hits)
    assert "<mark" in str(result.hits[0].snippet) and "诈骗" in str(result.hits[0].snippet)


def test_fang_zhapian_still_finds_fangzhi_zhapian(demo):
    result = search("防诈骗")
    talk = [h for h in result.hits if h.course_slug == "community-talk" and h.kind == "lesson"]
    assert talk, titles(result)
    assert "防止<mark" in str(talk[0].snippet)


def test_video_call_finds_the_smartphone_lesson_first(demo):
    result = search("视频通话", user_audience="elder")
    top = result.hits[0]
    assert (top.course_slug, top.lesson_slug) == ("smartphone-basics", "video-call")
    assert top.all_terms
    # a hit on only part of the word (视频 in the AI face-swap lesson) ranks below every full hit
    partial = [i for i, h in enumerate(result.hits) if not h.all_terms]
    full = [i for i, h in enumerate(result.hits) if h.all_terms]
    assert not partial or max(full) < min(partial)


def test_baiyou_finds_the_pomelo_course_and_not_the_cadre_modules(demo):
    result = search("白柚", user_audience="cadre")
    assert result.total >= 4
    assert {h.course_slug for h in result.hits} == {"pomelo"}
    assert "垫江白柚栽培管理" in titles(result)


def test_carbon_neutrality_and_a_single_character(demo):
    assert search("碳中和").hits[0].course_slug == "carbon-neutrality"
    # an elder typing one character still lands on the pomelo lessons
    assert {h.course_slug for h in search("柚").hits} == {"pomelo"}


def test_caption_only_phrase_finds_its_lesson_with_the_time(demo):
    result = search(CAPTION_ONLY)
    assert [(h.course_slug, h.lesson_slug) for h in result.hits] == [("community-talk", "talk")]
    hit = result.hits[0]
    assert hit.caption_start == 2
    assert "<mark" in str(hit.caption_snippet) and "广场</mark>" in str(hit.caption_snippet)


def test_own_audience_ranks_first(demo):
    for audience in ("elder", "cadre"):
        result = search("安全", user_audience=audience)
        assert audience in result.hits[0].audiences, (audience, titles(result)[:3])
        assert result.hits[0].own_audience


def test_title_match_ranks_above_body_match(demo):
    result = search("修剪")
    assert result.hits[0].title == "白柚修剪"


# --- the page and the JSON answer ------------------------------------------------------------

def test_search_page_links_hits_and_caption_time(demo):
    client = signed_in(demo, "elder1")
    page = client.get("/search", query_string={"q": CAPTION_ONLY}).get_data(as_text=True)
    assert 'href="/courses/community-talk/lessons/talk"' in page
    assert 'href="/courses/community-talk/lessons/talk#t=2"' in page
    assert "0:02" in page
    page = client.get("/search", query_string={"q": "诈骗"}).get_data(as_text=True)
    assert "<mark" in page and "冒充公检法与“安全账户”" in page
    # 长辈版 (elder1): one big 搜索 button on every page opens the search page, whose box holds the query
    assert 'class="search-link" href="/search"' in client.get("/").get_data(as_text=True)
    assert 'role="search"' in page and 'value="诈骗"' in page


def test_search_answers_json_when_asked(demo):
    client = anonymous(demo)
    response = client.get("/search?q=视频通话", headers={"Accept": "application/json"})
    assert response.status_code == 200 and response.is_json
    body = response.get_json()
    assert body["results"][0]["url"] == "/courses/smartphone-basics/lessons/video-call"
    assert "<mark" in body["results"][0]["snippet"]
    caption = body["results"][0]["caption"]
    assert caption["url"].startswith("/courses/smartphone-basics/lessons/video-call#t=")
    # a browser gets the page
    assert client.get("/search?q=视频通话").mimetype == "text/html"


def test_snippets_escape_the_text(demo, test_video, tmp_path):
    from lms.search.query import _snippet

    html = str(_snippet("<script>alert(1)</script>诈骗就是骗钱", ["诈骗"]))
    assert "<script" not in html and "&lt;/script&gt;" in html and "<mark" in html


@pytest.mark.parametrize("query", ["？！。，……", "!!!", "的了和", "   "])
def test_query_without_words_gets_a_clear_answer(demo, query):
    client = anonymous(demo)
    response = client.get("/search", query_string={"q": query})
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert ("没有可以搜索的字词" in page) or ("请输入想学的内容" in page)
    body = client.get("/search", query_string={"q": query}, headers={"Accept": "application/json"}).get_json()
    assert body["results"] == [] and body["message"]


def test_a_2000_character_query_is_capped_not_a_500(demo):
    client = anonymous(demo)
    long_query = ("诈骗" + "很长的一句话，" * 400)[:2000]
    response = client.get("/search", query_string={"q": long_query}, headers={"Accept": "application/json"})
    assert response.status_code == 200
    body = response.get_json()
    assert body["truncated"] is True and "100" in body["notice"]
    assert len(body["query"]) == 100
    assert body["results"] and body["results"][0]["course"] == "识破电信诈骗"
    page = client.get("/search", query_string={"q": "x" * 2000})
    assert page.status_code == 200 and "搜索词太长" in page.get_data(as_text=True)


def test_empty_result_suggests_popular_courses_of_my_audience(demo):
    client = signed_in(demo, "farmer1")
    page = client.get("/search", query_string={"q": "钢琴恐龙"}).get_data(as_text=True)
    assert "没有找到与“钢琴恐龙”有关的课程" in page
    assert "垫江白柚栽培管理" in page  # the farmers' course
    assert "人工智能前沿" not in page
    body = client.get("/search?q=钢琴恐龙", headers={"Accept": "application/json"}).get_json()
    # the anti-fraud course is tagged for farmers too (issue 13)
    assert body["results"] == [] and {s["title"] for s in body["suggestions"]} == {"垫江白柚栽培管理", "识破电信诈骗"}


def test_healthz_reports_the_index(demo):
    body = anonymous(demo).get("/healthz").get_json()
    check = body["checks"]["search"]
    assert check["ok"] and check["exists"] and check["in_step"]
    assert check["courses"] == len(DEMO) + 1 and check["documents"] > 20
    assert check["last_modified"]


# --- kept in step with the database ----------------------------------------------------------

@pytest.fixture
def search_app(tmp_path, media_dir):
    app = _make_app(tmp_path, data_dir=media_dir, SEARCH_DIR=str(tmp_path / "search"))
    with app.app_context():
        yield app
        db.session.remove()
        db.engine.dispose()


def test_unpublished_course_never_shows(search_app, tmp_path):
    from lms.courses.importer import import_package
    from lms.courses.models import Course
    from lms.search.index import update_courses

    folder = write_package(tmp_path / "content", None, slug="bees", title="火星养蜂技术")
    course, _ = import_package(folder)
    update_courses([course.id])
    assert titles(search("养蜂"))  # published: found
    course.published = False
    db.session.commit()
    # even before the index catches up, the database decides
    assert search("养蜂").hits == []
    assert search_app.test_client().get("/search?q=养蜂", headers={"Accept": "application/json"}).get_json()[
        "results"] == []
    update_courses([course.id])
    from lms.search.index import index_state

    assert index_state()["documents"] == 0
    db.session.get(Course, course.id).published = True
    db.session.commit()
    update_courses([course.id])
    assert {h.kind for h in search("养蜂").hits} == {"course", "lesson"}


def test_retired_lesson_leaves_the_index_on_reimport(search_app, tmp_path):
    from lms.courses.importer import import_package
    from lms.search.index import update_courses

    folder = write_package(tmp_path / "content", None, slug="two", lessons=2)
    course, _ = import_package(folder)
    update_courses([course.id])
    assert sorted(h.lesson_slug for h in search("转账").hits if h.kind == "lesson") == ["lesson-1", "lesson-2"]
    data = yaml.safe_load((folder / "course.yaml").read_text(encoding="utf-8"))
    data["lessons"] = data["lessons"][:1]
    (folder / "course.yaml").write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    import_package(folder)
    update_courses([course.id])
    assert [h.lesson_slug for h in search("转账").hits if h.kind == "lesson"] == ["lesson-1"]


def test_import_command_indexes_and_reindex_rebuilds(search_app, tmp_path):
    import shutil

    from lms.search.index import current_index_dir

    write_package(tmp_path / "content", None, slug="cli-course", title="蜜本南瓜种植")
    runner = search_app.test_cli_runner()
    result = runner.invoke(args=["import-content", str(tmp_path / "content")])
    assert result.exit_code == 0, result.output
    assert "蜜本南瓜种植" in titles(search("南瓜"))
    shutil.rmtree(current_index_dir())  # lost index: reindex rebuilds it from the database
    from lms.search.index import clear_cache

    clear_cache()
    result = runner.invoke(args=["search", "reindex"])
    assert result.exit_code == 0, result.output
    assert "搜索索引已重建：2 条" in result.output
    assert "蜜本南瓜种植" in titles(search("南瓜"))


WRITER = textwrap.dedent("""
    import sys, time
    from lms import create_app
    from lms.extensions import db
    db_url, data_dir, search_dir, role, course_id, rounds = sys.argv[1:7]
    app = create_app({"SQLALCHEMY_DATABASE_URI": db_url, "DATA_DIR": data_dir, "SEARCH_DIR": search_dir,
                      "SECRET_KEY": "x", "SEARCH_WRITER_TIMEOUT": 120})
    with app.app_context():
        from lms.courses.models import Course
        from lms.search import index
        from lms.search.query import search
        if role == "writer":
            for n in range(int(rounds)):
                course = db.session.get(Course, int(course_id))
                course.summary = f"进度 c{course_id}r{n}"
                db.session.commit()
                index.update_courses([int(course_id)])
        elif role == "rebuilder":
            for n in range(int(rounds)):
                index.rebuild()
        else:
            searches = 0
            deadline = time.time() + float(rounds)
            while time.time() < deadline:
                assert search("转账").total >= 1
                searches += 1
            print("searches", searches)
""")


def test_several_processes_write_while_another_searches(search_app, tmp_path):
    """Three writers, a rebuilder and a searcher at once: no update lost, the index opens cleanly."""
    from lms.courses.importer import import_package
    from lms.search.index import index_state, update_courses

    ids = []
    for n in range(3):
        course, _ = import_package(write_package(tmp_path / "content", None, slug=f"race-{n}"))
        ids.append(course.id)
    update_courses(ids)
    script = tmp_path / "worker.py"
    script.write_text(WRITER, encoding="utf-8")
    common = [search_app.config["SQLALCHEMY_DATABASE_URI"], search_app.config["DATA_DIR"],
              search_app.config["SEARCH_DIR"]]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "LMS_INSTANCE_DIR": str(tmp_path / "instance")}
    rounds = 8
    procs = [subprocess.Popen([sys.executable, str(script), *common, "writer", str(cid), str(rounds)], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for cid in ids]
    procs.append(subprocess.Popen([sys.executable, str(script), *common, "rebuilder", "0", "3"], env=env,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    procs.append(subprocess.Popen([sys.executable, str(script), *common, "searcher", "0", "8"], env=env,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    outputs = [p.communicate(timeout=300) for p in procs]
    for proc, (out, err) in zip(procs, outputs):
        assert proc.returncode == 0, err[-2000:]
    assert int(outputs[-1][0].split()[-1]) > 0  # the searcher really searched meanwhile
    # every writer's last update is in the index, none of the earlier ones
    for cid in ids:
        assert [h.kind for h in search(f"c{cid}r{rounds - 1}").hits] == ["course"]
        assert search(f"c{cid}r{rounds - 2}").hits == []
    state = index_state()
    assert state["exists"] and state["courses"] == 3 and state["documents"] == 6
    from whoosh import index as whoosh_index
    from lms.search.index import current_index_dir

    ix = whoosh_index.open_dir(current_index_dir())
    with ix.searcher() as searcher:
        assert searcher.doc_count() == 6
        assert sorted(doc["doc_id"] for doc in searcher.documents()) == sorted(
            [f"course:{cid}" for cid in ids] + [f"lesson:{cid}" for cid in ids])
