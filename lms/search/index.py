"""Keeping the index in step with the database (the source of truth).

Two writers only — ``update_courses(ids)`` and ``rebuild()`` — and they take Whoosh's writer lock
(a file lock, so it holds across gunicorn workers, job workers and `lms` commands), retrying on
LockError until SEARCH_WRITER_TIMEOUT. Each reads the database *after* it holds the lock, in a
fresh session, so the last writer always writes the newest committed state: no update is lost
whichever process gets the lock first. Readers never wait: a searcher sees the last committed
generation while a writer works (Whoosh retries a reader whose files a commit just removed).

Call them after the database commit: web-side changes go through the job queue (lms/jobs), operator commands (lms import-content) call them directly.
"""
from __future__ import annotations

import fcntl
import html
import os
import random
import re
import threading
import time
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Iterable

from flask import current_app
from sqlalchemy.orm import Session
from whoosh import index as whoosh_index
from whoosh.index import LockError
from whoosh.query import Term
from whoosh.writing import CLEAR

from lms.courses.models import Course
from lms.extensions import db
from lms.search.analyzer import ensure_jieba
from lms.search.schema import index_dir, make_schema, search_root

DEFAULT_WRITER_TIMEOUT = 60.0
_indexes: dict[str, object] = {}
_indexes_lock = threading.Lock()


class IndexBusy(RuntimeError):
    """Another process held the writer lock for longer than SEARCH_WRITER_TIMEOUT."""


def _data_dir() -> str:
    return current_app.config["DATA_DIR"]


def current_search_root() -> str:
    """SEARCH_DIR when configured (tests, a faster disk), else LMS_DATA_DIR/search."""
    return current_app.config.get("SEARCH_DIR") or search_root(_data_dir())


def current_index_dir() -> str:
    return index_dir(current_search_root())


@contextmanager
def _file_lock(path: str):
    with open(path, "a+") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _exists(path: str) -> bool:
    """whoosh's exists_in, which reads the newest table of contents: a commit in another process may
    delete the one it listed (FileNotFoundError), so it looks again, as newest_searcher does."""
    for attempt in range(SEARCHER_OPEN_TRIES):
        try:
            return whoosh_index.exists_in(path)
        except FileNotFoundError:
            if attempt == SEARCHER_OPEN_TRIES - 1:
                raise
            time.sleep(0.01 * (attempt + 1))


def open_index(path: str | None = None, create: bool = True):
    """The index at `path` (default: this app's), created empty on first use; None if absent and
    create is False. The FileIndex object is kept per process: every searcher() and writer() it
    gives reads the newest committed generation."""
    path = path or current_index_dir()
    ensure_jieba(os.path.dirname(path))
    ix = _indexes.get(path)
    if ix is not None and _exists(path):
        return ix
    with _indexes_lock:
        if not _exists(path):
            if not create:
                return None
            os.makedirs(path, exist_ok=True)
            # Two processes creating at once would overwrite each other's first commit.
            with _file_lock(os.path.join(os.path.dirname(path), ".create.lock")):
                if not _exists(path):
                    whoosh_index.create_in(path, make_schema())
        ix = whoosh_index.open_dir(path)
        _indexes[path] = ix
        return ix


@contextmanager
def locked_writer(ix, timeout: float | None = None):
    """One writer at a time across processes: wait for Whoosh's lock, retrying on LockError."""
    if timeout is None:
        timeout = float(current_app.config.get("SEARCH_WRITER_TIMEOUT", DEFAULT_WRITER_TIMEOUT))
    deadline = time.monotonic() + timeout
    while True:
        remaining = deadline - time.monotonic()
        try:
            writer = ix.writer(timeout=max(0.1, min(5.0, remaining)), delay=0.05)
            break
        except LockError:
            if time.monotonic() >= deadline:
                raise IndexBusy(f"search index writer lock not free after {timeout:.0f} s") from None
            time.sleep(random.uniform(0.02, 0.2))
    try:
        yield writer
    except BaseException:
        writer.cancel()
        raise


# --- documents from the database ------------------------------------------------------------

VTT_TIME = re.compile(r"^\s*(?:(\d+):)?(\d{1,2}):(\d{2})(?:[.,](\d{1,3}))?\s*-->")
TAG = re.compile(r"<[^>]+>")
BLOCK_END = re.compile(r"</(?:p|h[1-6]|li|blockquote|pre|tr)>|<br\s*/?>", re.I)


def parse_vtt(text: str) -> list[tuple[int, str]]:
    """WebVTT cues as (start second, text), in order."""
    cues = []
    for block in re.split(r"\n\s*\n", text.replace("\r\n", "\n").replace("\r", "\n")):
        lines = block.strip("\n").split("\n")
        for n, line in enumerate(lines):
            match = VTT_TIME.match(line)
            if match:
                hours, minutes, seconds = int(match.group(1) or 0), int(match.group(2)), int(match.group(3))
                words = " ".join(html.unescape(TAG.sub("", rest)).strip() for rest in lines[n + 1:]).strip()
                if words:
                    cues.append((hours * 3600 + minutes * 60 + seconds, words))
                break
    return cues


def plain_text(rendered_html: str) -> str:
    """The lesson text as a reader sees it (from the sanitised HTML), for indexing and snippets."""
    text = html.unescape(TAG.sub("", BLOCK_END.sub("\n", rendered_html or "")))
    return "\n".join(line.strip() for line in text.splitlines() if line.strip())


def lesson_cues(lesson, media_root: Path) -> list[tuple[int, str]]:
    video = lesson.video
    if video is None or not video.captions_path:
        return []
    path = media_root / video.captions_path
    try:
        return parse_vtt(path.read_text(encoding="utf-8-sig"))
    except (OSError, UnicodeDecodeError):
        return []  # captions missing on this machine: the lesson is still found by its text


def course_documents(course: Course, media_root: Path) -> list[dict]:
    """The documents of one published course: the course itself, and each of its active lessons."""
    audiences = ",".join(course.audiences)
    docs = [dict(
        doc_id=f"course:{course.id}", kind="course", course_key=str(course.id), course_slug=course.slug,
        lesson_id=None, lesson_slug=None, title=course.title, course_title=course.title,
        body=course.summary or "", text=course.summary or "", cues=[], audiences=audiences,
        grams="\n".join((course.title, course.summary or "")),
    )]
    for lesson in course.active_lessons:
        text = plain_text(lesson.text_html) or lesson.text_markdown or ""
        cues = lesson_cues(lesson, media_root)
        captions = "\n".join(words for _, words in cues)
        docs.append(dict(
            doc_id=f"lesson:{lesson.id}", kind="lesson", course_key=str(course.id), course_slug=course.slug,
            lesson_id=lesson.id, lesson_slug=lesson.slug, title=lesson.title, course_title=course.title,
            body=text + "\n" + captions, text=text, cues=[[start, words] for start, words in cues],
            audiences=audiences,
            grams="\n".join((lesson.title, course.title, text, captions)),
        ))
    return docs


def _media_root() -> Path:
    return Path(_data_dir()) / "media"


def update_courses(course_ids: Iterable[int], timeout: float | None = None) -> int:
    """Re-index every lesson of these courses from the database; a course that is unpublished or
    deleted (and retired lessons) leaves the index. Returns the number of documents written."""
    ids = sorted({int(i) for i in course_ids})
    if not ids:
        return 0
    ix = open_index()
    written = 0
    with locked_writer(ix, timeout) as writer:
        # Read only now, holding the lock, in a fresh session: the newest committed state.
        with Session(db.engine) as session:
            courses = {c.id: c for c in session.query(Course).filter(Course.id.in_(ids))}
            for course_id in ids:
                writer.delete_by_term("course_key", str(course_id))
                course = courses.get(course_id)
                if course is not None and course.published:
                    for doc in course_documents(course, _media_root()):
                        writer.add_document(**doc)
                        written += 1
        writer.commit()
    return written


def rebuild(progress: Callable[[Course], None] | None = None, on_total: Callable[[int], None] | None = None,
            timeout: float | None = None) -> int:
    """Rebuild the whole index from the database, under the writer lock (clear, then add every
    published course): searches keep seeing the old index until the commit. Returns documents."""
    ix = open_index()
    written = 0
    with locked_writer(ix, timeout) as writer:
        with Session(db.engine) as session:
            courses = session.query(Course).filter(Course.published.is_(True)).order_by(Course.id).all()
            if on_total:
                on_total(len(courses))
            for course in courses:
                for doc in course_documents(course, _media_root()):
                    writer.add_document(**doc)
                    written += 1
                if progress:
                    progress(course)
        writer.commit(mergetype=CLEAR)
    return written


SEARCHER_OPEN_TRIES = 5


def newest_searcher(ix):
    """A searcher on the newest committed generation. A commit in another process deletes the previous
    generation's table of contents, so a reader that listed the folder just before it finds that file
    gone (FileNotFoundError): it looks again, and then sees the new generation."""
    for attempt in range(SEARCHER_OPEN_TRIES):
        try:
            return ix.searcher()
        except FileNotFoundError:
            if attempt == SEARCHER_OPEN_TRIES - 1:
                raise
            time.sleep(0.01 * (attempt + 1))


def index_state() -> dict:
    """What /healthz reports: whether the index exists and opens, its documents, last commit."""
    path = current_index_dir()
    if not _exists(path):
        return {"exists": False, "path": path, "documents": 0, "courses": 0, "last_modified": None}
    ix = open_index(path, create=False)
    with newest_searcher(ix) as searcher:
        documents = searcher.doc_count()
        courses = sum(1 for _ in searcher.docs_for_query(Term("kind", "course")))
    modified = datetime.fromtimestamp(ix.last_modified(), tz=timezone.utc).isoformat(timespec="seconds")
    return {"exists": True, "path": path, "documents": documents, "courses": courses, "last_modified": modified,
            "generation": ix.latest_generation()}


def clear_cache() -> None:
    """Forget the per-process FileIndex objects (tests that remove an index folder)."""
    with _indexes_lock:
        _indexes.clear()


__all__ = ["update_courses", "rebuild", "open_index", "index_state", "IndexBusy", "search_root"]
