"""The index schema and where the index lives (LMS_DATA_DIR/search/index-v<N>).

A new SCHEMA_VERSION means a new folder: old code and new code never write each other's
index, and `lms search reindex` fills the new one from the database.
"""
from __future__ import annotations

import os

from whoosh.fields import ID, KEYWORD, STORED, TEXT, Schema

from lms.search.analyzer import gram_analyzer, word_analyzer

SCHEMA_VERSION = 2


def make_schema() -> Schema:
    words = word_analyzer()
    return Schema(
        doc_id=ID(unique=True, stored=True),        # "course:3" / "lesson:12"
        kind=ID(stored=True),                       # course / lesson
        course_key=ID(stored=True),                 # str(course.id): delete a course's documents at once
        lesson_id=STORED(),
        course_slug=STORED(),
        lesson_slug=STORED(),
        title=TEXT(analyzer=words, stored=True, phrase=False),          # course or lesson title
        course_title=TEXT(analyzer=words, stored=True, phrase=False),   # the lesson's course
        body=TEXT(analyzer=words, phrase=False),                        # summary, or lesson text + captions
        text=STORED(),                                                  # summary or lesson text (snippets)
        cues=STORED(),                                                  # [[start second, text], ...]
        grams=TEXT(analyzer=gram_analyzer(), phrase=False),             # all of the above, as 1-2 grams
        audiences=KEYWORD(stored=True, commas=True),
    )


def search_root(data_dir: str) -> str:
    return os.path.join(data_dir, "search")


def index_dir(root: str) -> str:
    """The index folder under a search root (LMS_DATA_DIR/search by default)."""
    return os.path.join(root, f"index-v{SCHEMA_VERSION}")
