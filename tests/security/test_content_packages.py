"""Attacks through content packages and import edges (issue 9, defects 6 and 10).

A package is only read: every path it names or implies stays inside its folder, symlinks included,
and a refused package names the file, writes nothing anywhere and imports nothing. A package keeps
its identity (`id:`) across renames, so renaming its folder cannot mint a second course to be
credited again. One failing package never stops the others, and the database enforces foreign keys
as production does.
"""
from __future__ import annotations

import shutil

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from lms.courses.importer import ContentError, import_package
from lms.courses.models import Course, Lesson
from lms.extensions import db
from lms.media.models import VideoAsset
from lms.quizzes.models import Quiz, QuizAttempt
from lms.records.models import TrainingRecord
from lms.records.services import credit_course_completion
from tests.conftest import write_package
from tests.test_importer import edit_course_yaml, write_slides_package


def refused(folder) -> str:
    with pytest.raises(ContentError) as caught:
        import_package(folder)
    return str(caught.value)


def nothing_imported():
    return (Course.query.count(), Lesson.query.count(), VideoAsset.query.count()) == (0, 0, 0)


def test_captions_path_climbing_out_of_the_package_is_refused(app, tmp_path, package):
    """`captions: ../../etc/x` → ContentError naming course.yaml, the field and the path; nothing imported."""
    edit_course_yaml(package, lambda d: d["lessons"][0].update(captions="../../etc/x"))
    message = refused(package)
    assert "course.yaml" in message and "lessons[0].captions" in message and "“../../etc/x”指向课程文件夹之外" in message
    assert nothing_imported()


def test_symlinked_video_pointing_outside_is_refused(app, tmp_path, package, test_video):
    """video.mp4 → a real video outside the package → refused naming 01-lesson/video.mp4; nothing imported."""
    outside = tmp_path / "elsewhere" / "secret.mp4"
    outside.parent.mkdir()
    shutil.copyfile(test_video, outside)
    (package / "01-lesson" / "video.mp4").unlink()
    (package / "01-lesson" / "video.mp4").symlink_to(outside)
    message = refused(package)
    assert "lessons[0].video" in message and "01-lesson/video.mp4" in message and "指向课程文件夹之外" in message
    assert nothing_imported()


def test_symlinked_lesson_folder_leading_outside_is_refused(app, tmp_path, package):
    """A lesson folder that is a symlink to a folder outside → refused naming its text file; nothing imported."""
    outside = tmp_path / "elsewhere"
    shutil.move(package / "01-lesson", outside)
    (package / "01-lesson").symlink_to(outside, target_is_directory=True)
    message = refused(package)
    assert "lessons[0].text" in message and "01-lesson/lesson.md" in message
    assert nothing_imported()


def test_course_yaml_symlinked_outside_is_refused(app, tmp_path, package):
    """course.yaml → a file outside the package → refused naming course.yaml, the outside file unread."""
    outside = tmp_path / "outside.yaml"
    shutil.move(package / "course.yaml", outside)
    (package / "course.yaml").symlink_to(outside)
    message = refused(package)
    assert "course.yaml" in message and "指向课程文件夹之外" in message
    assert nothing_imported()


def test_dangling_symlink_at_default_captions_path_writes_nothing_outside(app, tmp_path):
    """captions.vtt beside slides.yaml → a missing file outside: refused naming it, the target never created."""
    folder = write_slides_package(tmp_path / "content")
    target = tmp_path / "victim" / "planted.vtt"
    target.parent.mkdir()
    (folder / "01-a" / "captions.vtt").symlink_to(target)
    message = refused(folder)
    assert "01-a/captions.vtt" in message and "指向课程文件夹之外" in message
    assert not target.exists() and list(target.parent.iterdir()) == []
    assert nothing_imported()


def test_dangling_symlink_inside_the_package_at_default_captions_path_is_refused(app, tmp_path):
    """captions.vtt beside slides.yaml → a missing file inside the package: refused, the file not created."""
    folder = write_slides_package(tmp_path / "content")
    (folder / "01-a" / "captions.vtt").symlink_to(folder / "01-a" / "made.vtt")
    message = refused(folder)
    assert "01-a/captions.vtt" in message and "不存在" in message
    assert not (folder / "01-a" / "made.vtt").exists() and nothing_imported()


def test_renamed_package_folder_makes_no_second_course(app, tmp_path, package, make_user):
    """Renaming the folder (so the slug) of a credited course → refused without --rename, one course;
    with --rename the same course (and its ledger) changes slug, and cannot be credited twice."""
    course, _ = import_package(package)
    learner = make_user()
    record = credit_course_completion(learner.id, course)
    moved = package.rename(package.parent / "test-course-2024")
    runner = app.test_cli_runner()

    result = runner.invoke(args=["import-content", str(moved)])
    assert result.exit_code != 0 and "--rename" in result.output and "test-course-2024" in result.output
    assert [c.slug for c in Course.query.all()] == ["test-course"]

    result = runner.invoke(args=["import-content", "--rename", str(moved)])
    assert result.exit_code == 0, result.output
    renamed = Course.query.one()
    assert (renamed.id, renamed.slug) == (course.id, "test-course-2024")
    assert TrainingRecord.query.one().id == record.id and record.course_id == renamed.id
    assert credit_course_completion(learner.id, renamed).id == record.id and TrainingRecord.query.count() == 1


def test_slug_held_by_another_package_is_refused(app, tmp_path, test_video):
    """A second package (another id) claiming an imported course's slug → refused naming the slug and id."""
    import_package(write_package(tmp_path / "a", test_video, slug="anti-fraud"))
    other = write_package(tmp_path / "b", test_video, slug="anti-fraud", id="someone-else")
    message = refused(other)
    assert "slug" in message and "anti-fraud" in message and "pkg-anti-fraud" in message
    assert Course.query.one().package_id == "pkg-anti-fraud"


def test_copied_package_with_the_same_id_is_refused_in_one_run(app, tmp_path, test_video):
    """Two folders with one id in a run (a copied package) → neither imported, both named, exit non-zero."""
    root = tmp_path / "content"
    write_package(root, test_video, slug="one", id="shared-id")
    write_package(root, test_video, slug="two", id="shared-id")
    result = app.test_cli_runner().invoke(args=["import-content", "--rename", str(root)])
    assert result.exit_code != 0 and "未导入 one" in result.output and "未导入 two" in result.output
    assert nothing_imported()


def test_a_package_failing_unexpectedly_does_not_stop_the_others(app, tmp_path, test_video, monkeypatch):
    """An internal error in one package → the others are imported, exit non-zero naming it and why."""
    from lms.courses import importer

    root = tmp_path / "content"
    for slug in ("a-first", "b-broken", "c-last"):
        write_package(root, test_video, slug=slug)
    real_write = importer._write

    def write(spec, course):
        if spec.slug == "b-broken":
            raise RuntimeError("磁盘出错")
        return real_write(spec, course)

    monkeypatch.setattr(importer, "_write", write)
    result = app.test_cli_runner().invoke(args=["import-content", str(root)])
    assert result.exit_code != 0
    assert "未导入 b-broken：内部错误（RuntimeError）：磁盘出错" in result.output
    assert sorted(c.slug for c in Course.query.all()) == ["a-first", "c-last"]


def test_removing_a_quiz_that_has_attempts_retires_it(app, tmp_path, test_video, make_user):
    """Dropping a quiz learners took (foreign keys on) → no IntegrityError, the quiz and attempts kept,
    the lesson no longer asks it, the next package in the run is imported too; put back, it is the
    same quiz with its attempts."""
    root = tmp_path / "content"
    first = write_package(root, test_video, slug="a-quiz-dropped")
    course, _ = import_package(first)
    quiz = course.active_lessons[0].quiz
    db.session.add(QuizAttempt(user_id=make_user().id, quiz_id=quiz.id, score=40, passed=False, answers_json="{}"))
    db.session.commit()
    quiz_id = quiz.id
    edit_course_yaml(first, lambda d: d["lessons"][0].pop("quiz"))
    write_package(root, test_video, slug="b-next")
    result = app.test_cli_runner().invoke(args=["import-content", str(root)])
    assert result.exit_code == 0, result.output
    db.session.expire_all()
    assert db.session.get(Course, course.id).active_lessons[0].quiz is None
    assert db.session.get(Quiz, quiz_id).retired and QuizAttempt.query.filter_by(quiz_id=quiz_id).count() == 1
    assert Course.query.filter_by(slug="b-next").count() == 1
    edit_course_yaml(first, lambda d: d["lessons"][0].update(quiz="01-lesson/quiz.yaml"))
    course, _ = import_package(first)
    assert course.active_lessons[0].quiz.id == quiz_id and Quiz.query.count() == 2


def test_foreign_keys_are_enforced_after_migrating(app):
    """The session the app uses after `db upgrade` → PRAGMA foreign_keys is on: a lesson of no course is refused."""
    assert db.session.execute(text("PRAGMA foreign_keys")).scalar() == 1
    db.session.add(Lesson(course_id=999, slug="orphan", title="无主课时"))
    with pytest.raises(IntegrityError):
        db.session.commit()
    db.session.rollback()
