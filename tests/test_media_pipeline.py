"""The video pipeline: real ffmpeg on awkward inputs, uploads, jobs, and a worker killed mid-transcode."""
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from lms.extensions import db
from lms.media import ffmpeg_tools
from lms.media.models import VideoAsset
from lms.media.services import create_upload_asset, run_asset, srt_to_vtt
from lms.records.models import TrainingRecord
from lms.records.services import credit_course_completion
from tests.conftest import _make_app


def ffmpeg(*args):
    subprocess.run(["ffmpeg", "-v", "error", "-y", *map(str, args)], check=True)


@pytest.fixture(scope="module")
def sources(tmp_path_factory):
    """One file per awkward case, each made for real by ffmpeg (or by hand, for the broken ones)."""
    d = tmp_path_factory.mktemp("sources")
    files = {
        "corrupt": d / "corrupt.mp4",
        "renamed_text": d / "notes.mp4",
        "zero_bytes": d / "empty.mp4",
        "no_audio": d / "silent.mp4",
        "audio_only": d / "talk.m4a",
        "uhd_60fps": d / "uhd.mp4",
        "portrait": d / "portrait.mp4",
        "rotated_phone": d / "rotated.mp4",
    }
    good = d / "good.mp4"
    ffmpeg("-f", "lavfi", "-i", "testsrc=size=320x240:rate=25:duration=2", "-f", "lavfi", "-i",
           "sine=duration=2", "-c:v", "libx264", "-c:a", "aac", "-shortest", good)
    data = good.read_bytes()
    files["corrupt"].write_bytes(data[:200] + os.urandom(4000) + data[-100:])
    files["renamed_text"].write_text("这不是视频，是一份会议记录。\n" * 50, encoding="utf-8")
    files["zero_bytes"].write_bytes(b"")
    ffmpeg("-f", "lavfi", "-i", "testsrc=size=640x360:rate=25:duration=2", "-c:v", "libx264", files["no_audio"])
    ffmpeg("-f", "lavfi", "-i", "sine=frequency=300:duration=3", "-c:a", "aac", files["audio_only"])
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=3840x2160:rate=60:duration=1", "-f", "lavfi", "-i",
           "sine=duration=1", "-c:v", "libx264", "-preset", "ultrafast", "-c:a", "aac", "-shortest",
           files["uhd_60fps"])
    ffmpeg("-f", "lavfi", "-i", "testsrc=size=720x1280:rate=30:duration=2", "-f", "lavfi", "-i",
           "sine=duration=2", "-c:v", "libx264", "-preset", "ultrafast", "-c:a", "aac", "-shortest",
           files["portrait"])
    # A phone's way: landscape pixels with a rotation flag, displayed as portrait.
    landscape = d / "landscape.mp4"
    ffmpeg("-f", "lavfi", "-i", "testsrc=size=1280x720:rate=30:duration=2", "-c:v", "libx264",
           "-preset", "ultrafast", landscape)
    ffmpeg("-i", landscape, "-c", "copy", "-metadata:s:v:0", "rotate=90", files["rotated_phone"])
    return files


def playable_size(app, asset, name):
    path = Path(app.config["DATA_DIR"]) / "media" / asset.renditions[name]
    info = ffmpeg_tools.probe(path)
    return info.width, info.height, info.has_audio


@pytest.mark.parametrize("case, outcome, detail", [
    ("corrupt", "failed", "无法识别的视频文件"),
    ("renamed_text", "failed", "无法识别的视频文件"),
    ("zero_bytes", "failed", "0 字节"),
    ("no_audio", "ready", (640, 360, False)),
    ("audio_only", "ready", (640, 360, True)),
    ("uhd_60fps", "ready", (1280, 720, True)),
    ("portrait", "ready", (720, 1280, True)),
    ("rotated_phone", "ready", (720, 1280, False)),
])
def test_each_awkward_source_becomes_playable_or_fails_with_a_reason(app, course, sources, case, outcome, detail):
    lesson = course.active_lessons[0]
    playing = lesson.video
    asset = create_upload_asset(lesson, sources[case], sources[case].name)
    done = run_asset(asset.id)
    assert done.status == outcome
    db.session.refresh(lesson)
    if outcome == "failed":
        assert detail in done.error
        assert lesson.video_id == playing.id  # learners keep the video they had
        assert done.renditions == {}
    else:
        assert lesson.video_id == asset.id
        top = "720p" if "720p" in done.renditions else "360p"
        assert playable_size(app, done, top) == detail
        if case == "uhd_60fps":
            assert set(done.renditions) == {"360p", "720p"}
            assert playable_size(app, done, "360p")[:2] == (640, 360)
        if case in ("no_audio", "audio_only"):
            assert set(done.renditions) == {"360p"}  # never upscaled past the source


def test_renditions_have_faststart_keyframes_and_bitrate_caps(app, course, sources):
    lesson = course.active_lessons[0]
    done = run_asset(create_upload_asset(lesson, sources["uhd_60fps"], "uhd.mp4").id)
    path = Path(app.config["DATA_DIR"]) / "media" / done.renditions["360p"]
    head = path.read_bytes()[:4096]
    assert head.find(b"moov") < head.find(b"mdat") or b"mdat" not in head  # moov first: plays while downloading
    frames = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "v", "-show_entries",
                             "stream=avg_frame_rate", "-of", "csv=p=0", str(path)], capture_output=True, text=True)
    assert frames.stdout.strip() == "30/1"  # 60 fps halved for small files
    assert (Path(app.config["DATA_DIR"]) / "media" / done.poster_path).stat().st_size > 1000


def test_srt_captions_are_converted_to_vtt():
    srt = "1\n00:00:01,000 --> 00:00:03,500\n不听、不信、不转账\n\n2\n00:00:04,000 --> 00:00:06,000\n拨打 96110\n"
    vtt = srt_to_vtt(srt)
    assert vtt.startswith("WEBVTT\n\n") and "00:00:01.000 --> 00:00:03.500" in vtt and "拨打 96110" in vtt


def test_upload_in_the_browser_queues_a_job_and_replacing_keeps_records(browser_client, make_user, course, sources, app):
    from lms.jobs import huey

    learner = make_user()
    record = credit_course_completion(learner.id, course)
    admin = make_user(role="admin", unit="county", audience="cadre")
    browser_client.login(admin.username)
    lesson = course.active_lessons[0]
    old_video = lesson.video_id
    huey.flush()
    page = f"/admin/lessons/{lesson.id}/video"
    browser_client.refresh_token(page)
    with open(sources["no_audio"], "rb") as fh:
        srt = (b"1\n00:00:00,000 --> 00:00:02,000\nhello\n")
        import io

        response = browser_client.post(page, data={"csrf_token": browser_client.token,
                                                    "video": (fh, "新视频.mp4"),
                                                    "captions": (io.BytesIO(srt), "sub.srt")},
                                       content_type="multipart/form-data")
    assert response.status_code == 302
    asset = VideoAsset.query.filter_by(lesson_id=lesson.id).order_by(VideoAsset.id.desc()).first()
    assert asset.status == "pending" and asset.original_name == "新视频.mp4"
    assert huey.pending_count() == 1  # a job, not work inside the request
    status = browser_client.get(f"/admin/videos/{asset.id}/status").get_json()
    assert status["label"] == "等待处理"
    result = app.test_cli_runner().invoke(args=["media", "process"])
    assert result.exit_code == 0, result.output
    db.session.expire_all()
    assert db.session.get(VideoAsset, asset.id).status == "ready"
    assert course.active_lessons[0].video_id == asset.id != old_video
    captions = Path(app.config["DATA_DIR"]) / "media" / db.session.get(VideoAsset, asset.id).captions_path
    assert captions.read_text(encoding="utf-8").startswith("WEBVTT")
    kept = TrainingRecord.query.one()
    assert (kept.id, str(kept.hours)) == (record.id, str(record.hours))


def test_upload_rejects_non_video_and_outsiders(app, browser_client, make_user, course):
    from tests.conftest import BrowserLikeClient

    lesson = course.active_lessons[0]
    learner = make_user()
    browser_client.login(learner.username)
    assert browser_client.get(f"/admin/lessons/{lesson.id}/video").status_code == 403
    instructor = make_user(role="instructor", unit="county", audience="cadre")
    from lms.courses.authors import add_author

    add_author(course.slug, instructor.username)  # only a course's authors may replace its videos
    browser_client = BrowserLikeClient(app.test_client())
    browser_client.login(instructor.username)
    page = f"/admin/lessons/{lesson.id}/video"
    browser_client.refresh_token(page)
    import io

    response = browser_client.post(page, data={"csrf_token": browser_client.token,
                                                "video": (io.BytesIO(b"hello"), "readme.txt")},
                                   content_type="multipart/form-data")
    assert response.status_code == 400 and "不支持这种文件类型" in response.get_data(as_text=True)
    assert VideoAsset.query.filter_by(lesson_id=lesson.id).count() == 0


def test_failed_video_shows_reason_and_can_be_retried(browser_client, make_user, course, sources, app):
    lesson = course.active_lessons[0]
    asset = create_upload_asset(lesson, sources["corrupt"], "坏文件.mp4")
    run_asset(asset.id)
    admin = make_user(role="admin", unit="county", audience="cadre")
    browser_client.login(admin.username)
    page = browser_client.get(f"/admin/lessons/{lesson.id}/video").get_data(as_text=True)
    assert "失败" in page and "无法识别的视频文件" in page
    browser_client.refresh_token(f"/admin/lessons/{lesson.id}/video")
    browser_client.post(f"/admin/videos/{asset.id}/retry", data={"csrf_token": browser_client.token})
    db.session.expire_all()
    assert db.session.get(VideoAsset, asset.id).status == "pending"


def test_worker_killed_mid_transcode_finishes_after_restart(tmp_path, test_video):
    """SIGKILL the worker while it transcodes: no partial file is ever served, and on restart it finishes."""
    from tests.conftest import write_package

    data_dir = tmp_path / "data"
    app = _make_app(tmp_path, data_dir=data_dir)
    long_source = tmp_path / "long.mp4"
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=1280x720:rate=30:duration=20", "-f", "lavfi", "-i",
           "sine=duration=20", "-c:v", "libx264", "-preset", "ultrafast", "-c:a", "aac", "-shortest", long_source)
    with app.app_context():
        from lms.courses.importer import import_package
        from lms.jobs import enqueue_transcode

        course, _ = import_package(write_package(tmp_path / "content", test_video))
        lesson = course.active_lessons[0]
        lesson_id = lesson.id
        asset_id = create_upload_asset(lesson, long_source, "long.mp4").id
        enqueue_transcode(asset_id)
    env = dict(os.environ, LMS_DATABASE_URL=app.config["SQLALCHEMY_DATABASE_URI"], LMS_DATA_DIR=str(data_dir),
               LMS_INSTANCE_DIR=str(tmp_path / "instance"), LMS_JOB_STALE_SECONDS="3", LMS_SECRET_KEY="x")
    lms = [sys.executable, "-m", "lms.cli", "worker"]

    def asset_state():
        with app.app_context():
            db.session.expire_all()
            asset = db.session.get(VideoAsset, asset_id)
            return asset.status, asset.progress

    worker = subprocess.Popen(lms, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 60
        while time.time() < deadline and not (asset_state()[0] == "processing" and asset_state()[1] >= 5):
            time.sleep(0.2)
        assert asset_state()[0] == "processing"
        worker.send_signal(signal.SIGKILL)
        worker.wait()
    finally:
        if worker.poll() is None:
            worker.kill()
    killed_at = asset_state()
    media = data_dir / "media" / "videos"
    finished = [p for p in media.rglob("*.mp4") if not p.name.startswith(".tmp-")]
    with app.app_context():
        long_digest_dirs = {p.parent for p in media.rglob(".tmp-*")}
    assert killed_at[0] == "processing" and long_digest_dirs, "the kill should land mid-transcode"
    assert not any(p.parent in long_digest_dirs for p in finished)  # nothing complete-looking is left
    client = app.test_client()
    partial = next(iter(media.rglob(".tmp-*")))
    with app.app_context():
        from lms.accounts.services import create_user, get_or_create_unit

        get_or_create_unit("county", "垫江县", "county")
        create_user("viewer", "观众", "correct-horse", "learner", "elder", "county")
        db.session.commit()
    client.get("/login")
    assert client.get(f"/media/{partial.relative_to(data_dir / 'media')}").status_code in (302, 404)

    time.sleep(3.5)  # the killed job is now stale
    worker = subprocess.Popen(lms, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 180
        while time.time() < deadline and asset_state()[0] != "ready":
            time.sleep(0.5)
    finally:
        worker.send_signal(signal.SIGINT)
        try:
            worker.wait(timeout=15)
        except subprocess.TimeoutExpired:
            worker.kill()
    assert asset_state() == ("ready", 100)
    with app.app_context():
        asset = db.session.get(VideoAsset, asset_id)
        assert asset.attempts == 2 and set(asset.renditions) == {"360p", "720p"}
        assert db.session.get(type(asset), asset_id).lesson_id == lesson_id
        from lms.courses.models import Lesson

        assert db.session.get(Lesson, lesson_id).video_id == asset_id
    assert not list(media.rglob(".tmp-*"))


def test_job_queue_uses_redis_when_configured(tmp_path):
    """With LMS_REDIS_URL the queue lives in Redis, so workers on several machines share it."""
    redis = pytest.importorskip("redis")
    url = "redis://127.0.0.1:6379/15"
    try:
        redis.Redis.from_url(url).ping()
    except redis.exceptions.ConnectionError:
        pytest.skip("Redis not reachable at 127.0.0.1:6379")
    script = (
        "from lms import jobs\n"
        "jobs.huey.flush()\n"
        "jobs.enqueue_transcode(42)\n"
        "print(type(jobs.huey.storage).__name__, jobs.huey.pending_count())\n"
        "jobs.huey.flush()\n"
    )
    env = dict(os.environ, LMS_REDIS_URL=url, LMS_INSTANCE_DIR=str(tmp_path / "instance"))
    out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["RedisStorage", "1"]
