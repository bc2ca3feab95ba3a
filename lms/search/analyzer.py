"""Analyzers for Chinese text.

jieba is set up once per process, lazily (its dictionary takes ~1 s to load): start-up logging
silenced, its dictionary cache kept under LMS_DATA_DIR/search (not /tmp), and a small domain
dictionary added (碳中和, 白柚, 视频通话 … so a query and a text split the same way).

Two analyzers:
- ``word_analyzer()``: jieba's ChineseAnalyzer (search mode: long words also give their
  dictionary sub-words, e.g. 视频通话 → 视频通话, 视频, 通话), lower-cased, stop words dropped.
- ``gram_analyzer()``: every CJK character and every pair of neighbouring characters, other words
  whole. It finds a text whatever way jieba cut it (碳中和 in 碳达峰碳中和) and lets an elder
  type a single character (柚).
"""
from __future__ import annotations

import logging
import os
import re
import threading
from pathlib import Path

from whoosh.analysis import LowercaseFilter, StemFilter, StopFilter, Token, Tokenizer
from whoosh.lang.porter import stem

USER_DICT = Path(__file__).with_name("userdict.txt")
CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]+")
WORD_OR_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]+|[A-Za-z0-9]+")
# jieba.analyse.analyzer's STOP_WORDS and accepted_chars, here because importing jieba.analyse costs ~100 MB
# and 0.7 s (it loads the part-of-speech and TF-IDF tables, which search never uses)
STOP_WORDS = frozenset(("a", "an", "and", "are", "as", "at", "be", "by", "can", "for", "from", "have", "if", "in",
                        "is", "it", "may", "not", "of", "on", "or", "tbd", "that", "the", "this", "to", "us", "we",
                        "when", "will", "with", "yet", "you", "your", "的", "了", "和"))
JIEBA_CHARS = re.compile(r"[\u4E00-\u9FD5]+")

_lock = threading.Lock()
_ready = False


def _default_cache_dir() -> str:
    try:
        from flask import current_app

        return current_app.config.get("SEARCH_DIR") or os.path.join(current_app.config["DATA_DIR"], "search")
    except RuntimeError:  # outside an app (benchmark, a bare worker)
        from lms.config import _instance_dir

        return os.path.join(os.environ.get("LMS_DATA_DIR", str(_instance_dir() / "data")), "search")


def ensure_jieba(cache_dir: str | None = None):
    """Load jieba's dictionary once per process (thread-safe), quietly, caching under cache_dir; returns
    the jieba module. Only here is jieba imported: a process that never searches or indexes never
    holds its dictionary (~70 MB; tests/test_lean_imports.py)."""
    global _ready
    import jieba

    if _ready:
        return jieba
    with _lock:
        if _ready:
            return jieba
        jieba.setLogLevel(logging.WARNING)
        folder = cache_dir or _default_cache_dir()
        os.makedirs(folder, exist_ok=True)
        jieba.dt.tmp_dir = folder
        jieba.dt.cache_file = os.path.join(folder, "jieba.cache")
        jieba.initialize()
        jieba.load_userdict(str(USER_DICT))
        _ready = True
    return jieba


class JiebaTokenizer(Tokenizer):
    """jieba's ChineseTokenizer (search mode), made sure jieba is set up first (the schema is unpickled
    from the index in every process, so this is the one place every use goes through)."""

    def __call__(self, text, **kwargs):
        token = Token()
        for word, start, end in ensure_jieba().tokenize(text, mode="search"):
            if not JIEBA_CHARS.match(word) and len(word) <= 1:
                continue
            token.original = token.text = word
            token.pos = start
            token.startchar = start
            token.endchar = end
            yield token


def word_analyzer():
    """jieba's ChineseAnalyzer with the tokenizer above."""
    return (JiebaTokenizer() | LowercaseFilter() | StopFilter(stoplist=STOP_WORDS, minsize=1)
            | StemFilter(stemfn=stem, ignore=None, cachesize=50000))


class CjkGramTokenizer(Tokenizer):
    """Unigrams and bigrams of CJK runs; Latin words and numbers whole, lower-cased."""

    def __call__(self, value, positions=False, chars=False, keeporiginal=False, removestops=True,
                 start_pos=0, start_char=0, mode="", **kwargs):
        token = Token(positions, chars, removestops=removestops, mode=mode, **kwargs)
        pos = start_pos
        for match in WORD_OR_CJK.finditer(value):
            run, offset = match.group(), match.start()
            if not CJK.match(run):
                pieces = [(run.lower(), 0, len(run))]
            else:
                pieces = [(run[i], i, i + 1) for i in range(len(run))]
                pieces += [(run[i:i + 2], i, i + 2) for i in range(len(run) - 1)]
            for text, start, end in pieces:
                token.text = text
                token.boost = 1.0
                token.stopped = False
                if keeporiginal:
                    token.original = text
                if positions:
                    token.pos = pos
                    pos += 1
                if chars:
                    token.startchar = start_char + offset + start
                    token.endchar = start_char + offset + end
                yield token


def gram_analyzer():
    return CjkGramTokenizer()


def query_grams(term: str) -> list[str]:
    """The grams a query word must all have in the gram field: its bigrams (or itself if short)."""
    if not CJK.fullmatch(term) or len(term) <= 2:
        return [term.lower()]
    return [term[i:i + 2] for i in range(len(term) - 1)]


def query_groups(text: str, limit: int = 16) -> list[list[str]]:
    """The words of a query, grouped by where they stand: jieba's search mode gives a long word
    and its sub-words (视频通话 → 视频, 通话, 视频通话), which are one idea, not three. Each group
    lists its longest word first; punctuation and stop words are dropped; at most `limit` words."""
    spans: list[tuple[int, int, str]] = []
    seen: set[str] = set()
    for token in word_analyzer()(text, chars=True):
        if token.text in seen:
            continue
        seen.add(token.text)
        spans.append((token.startchar, token.endchar, token.text))
        if len(spans) >= limit:
            break
    spans.sort()
    groups: list[list[tuple[int, int, str]]] = []
    end = -1
    for span in spans:
        if groups and span[0] < end:
            groups[-1].append(span)
            end = max(end, span[1])
        else:
            groups.append([span])
            end = span[1]
    return [[t for _, _, t in sorted(group, key=lambda s: (s[0] - s[1], s[0]))] for group in groups]


