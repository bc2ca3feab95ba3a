"""Searching: words of the query → ranked, filtered, highlighted hits.

Ranking for short Chinese queries, as a few top-N Whoosh searches (never scoring every match):
1. documents that have *every* word of the query, then those that have only some — a word with
   its parts counts once (视频通话 = 视频通话, or 视频 and 通话; 防诈骗 is there when 诈骗 is);
2. within each, the learner's own audience first (a filter, then a mask);
3. then Whoosh's BM25F score, where a title match (×4) outweighs the course title (×2) and the
   body (lesson text and captions, ×1).
Single-character words (防 in 防诈骗) only add to the score when the query has longer words, so
they never flood the results on their own. When the words find less than a page, the
character-gram field rescues what jieba cut differently (碳中和 in 碳达峰碳中和) and single
characters an elder types (柚). The page's hits are checked against the database (published
course, active lesson), so nothing unpublished shows even before the index catches up.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from markupsafe import Markup
from sqlalchemy import func
from whoosh.analysis import Token, Tokenizer
from whoosh.highlight import ContextFragmenter, HtmlFormatter, highlight
from whoosh.query import And, AndMaybe, Or, Term

from lms.courses.models import Course, CourseAudience, Lesson, LessonProgress
from lms.extensions import db
from lms.search.analyzer import query_grams, query_groups
from lms.search.index import newest_searcher, open_index

MAX_QUERY_CHARS = 100
MAX_TERMS = 16
WORD_FIELDS = {"title": 4.0, "course_title": 2.0, "body": 1.0}
GRAM_BOOST = 0.3
SNIPPET_CHARS = 120


@dataclass
class Hit:
    kind: str                   # "course" or "lesson"
    course_slug: str
    course_title: str
    lesson_slug: str | None
    title: str
    audiences: list[str]
    score: float
    all_terms: bool             # has every word (group) of the query
    own_audience: bool
    snippet: Markup = Markup("")
    caption_start: int | None = None     # the second where a matching caption is said
    caption_snippet: Markup = Markup("")
    lesson_id: int | None = None
    course_id: int | None = None


@dataclass
class SearchResult:
    query: str
    terms: list[str] = field(default_factory=list)
    hits: list[Hit] = field(default_factory=list)
    total: int = 0
    page: int = 1
    per_page: int = 20
    truncated: bool = False     # the query was longer than MAX_QUERY_CHARS
    no_terms: bool = False      # nothing searchable in it (only punctuation, stop words)

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.per_page))


def _unit(term: str):
    """One query word in the word fields: title above course title above body and captions."""
    return Or([Term(name, term, boost=boost) for name, boost in WORD_FIELDS.items()])


def _gram_unit(term: str):
    grams = query_grams(term)
    return And([Term("grams", g) for g in grams]) if len(grams) > 1 else Term("grams", grams[0])


def _strong(groups):
    return [g for g in groups if any(len(t) > 1 for t in g)]


def _group_all(group, unit):
    """A group is there when its long word is, or every one of its sub-words (防诈骗 ⇐ 诈骗)."""
    longest, *subwords = group
    return Or([unit(longest), And([unit(t) for t in subwords])]) if subwords else unit(longest)


def all_query(groups, unit=_unit):
    """Every group of the query."""
    parts = [_group_all(g, unit) for g in groups]
    return parts[0] if len(parts) == 1 else And(parts)


def any_query(groups, unit=_unit):
    """Any group of the query (a group: its long word, or all its parts — 安全 alone is no match
    for 数据安全); single-character groups only add to the score when the query has longer
    words (防 alone would match half the corpus)."""
    strong = _strong(groups)
    weak = [g for g in groups if g not in strong]
    if not strong:
        return Or([_group_all(g, unit) for g in weak])
    required = Or([_group_all(g, unit) for g in strong]) if len(strong) > 1 else _group_all(strong[0], unit)
    return AndMaybe(required, Or([_group_all(g, unit) for g in weak])) if weak else required


class _TermSpotter(Tokenizer):
    """A highlighting 'analyzer' that yields where the query words occur in the text (longest word
    first, no overlaps) and the text between them in short pieces — what the snippet needs,
    without re-running jieba over every hit."""

    GAP = 4

    def __init__(self, terms):
        words = sorted({t for t in terms if t}, key=len, reverse=True)
        self.pattern = re.compile("|".join(re.escape(w) for w in words), re.I) if words else None

    def __call__(self, value, positions=False, chars=False, keeporiginal=False, removestops=True,
                 start_pos=0, start_char=0, mode="", **kwargs):
        if self.pattern is None:
            return
        token = Token(positions, chars, removestops=removestops, mode=mode, **kwargs)
        token.boost, token.stopped, token.pos = 1.0, False, start_pos

        def emit(text, start, end):
            token.text, token.startchar, token.endchar = text, start_char + start, start_char + end
            return token

        last = 0
        for match in self.pattern.finditer(value):
            # the context between matches, in short pieces, so the fragmenter can count it
            for at in range(last, match.start(), self.GAP):
                yield emit("", at, min(at + self.GAP, match.start()))
            yield emit(match.group().lower(), match.start(), match.end())
            last = match.end()
        for at in range(last, len(value), self.GAP):
            yield emit("", at, min(at + self.GAP, len(value)))


def _snippet(text: str, terms: list[str], chars: int = SNIPPET_CHARS) -> Markup:
    """Whoosh highlighting: the best ContextFragmenter fragments of the text, HTML-escaped, each
    query word in <mark>. Words are found as written (防止诈骗 marks 诈骗), whatever jieba's cut."""
    if not text:
        return Markup("")
    lowered_text = text.lower()
    found = [p for p in (lowered_text.find(t.lower()) for t in terms if t) if p >= 0]
    if not found:
        return Markup("")
    lead = ""
    if len(text) > 3 * chars:  # only the stretch around the first match needs looking at
        start = max(0, min(found) - chars // 2)
        lead, text = ("… " if start else ""), text[start:start + 3 * chars]
    spotter = _TermSpotter(terms)
    formatter = HtmlFormatter(tagname="mark", classname="hl", termclass="t", between=" … ")
    fragmenter = ContextFragmenter(maxchars=chars, surround=chars // 3)
    lowered = {t.lower() for t in terms}
    html = highlight(text, lowered, spotter, fragmenter, formatter, top=2)
    return Markup(lead + html) if html else Markup("")


def _best_cue(cues, terms: list[str]):
    """The cue that says the most query words (the earliest on a tie)."""
    best, best_count = None, 0
    for start, words in cues or ():
        lowered = words.lower()
        count = sum(1 for t in terms if t.lower() in lowered)
        if count > best_count:
            best, best_count = (start, words), count
    return best


def _visible(course_ids: set[int], lesson_ids: set[int]) -> tuple[set[int], set[int]]:
    """The database decides: published courses, and their lessons that are not retired."""
    courses = set()
    if course_ids:
        courses = {cid for (cid,) in db.session.query(Course.id).filter(Course.id.in_(course_ids),
                                                                         Course.published.is_(True))}
    lessons = set()
    if lesson_ids:
        lessons = {lid for (lid,) in db.session.query(Lesson.id).filter(
            Lesson.id.in_(lesson_ids), Lesson.retired.is_(False), Lesson.course_id.in_(courses or {-1}))}
    return courses, lessons


def normalise_query(raw: str | None) -> tuple[str, bool]:
    query = " ".join((raw or "").split())
    if len(query) > MAX_QUERY_CHARS:
        return query[:MAX_QUERY_CHARS], True
    return query, False


def search(raw_query: str | None, user_audience: str | None = None, audience: str | None = None,
           page: int = 1, per_page: int = 20, ix=None, visible=None) -> SearchResult:
    """Search published lessons and courses. `user_audience` ranks that audience first;
    `audience` (optional) keeps only that audience's courses. `ix` and `visible` (the database
    check) are for the benchmark, which searches an index without a database."""
    query, truncated = normalise_query(raw_query)
    result = SearchResult(query=query, truncated=truncated, page=max(1, page), per_page=per_page)
    if not query:
        return result
    groups = query_groups(query, MAX_TERMS)
    terms = [t for g in groups for t in g]
    result.terms = terms
    if not terms:
        result.no_terms = True
        return result
    ix = ix or open_index()
    base = Term("audiences", audience) if audience else None
    with newest_searcher(ix) as searcher:  # one searcher per request; sees the last committed index
        own_docs = set(searcher.docs_for_query(Term("audiences", user_audience))) if user_audience else set()
        groups = _prune(searcher, groups, per_page)
        ranked = _rank(searcher, groups, _unit, base, own_docs, set())
        if len(ranked) < per_page:  # few hits: character grams catch what jieba cut differently
            ranked += _rank(searcher, groups, _gram_unit, base, own_docs, {docnum for docnum, *_ in ranked})
        total = len(ranked)
        start = (result.page - 1) * per_page
        page_hits = [(docnum, score, all_terms, own_first, searcher.stored_fields(docnum))
                     for docnum, score, all_terms, own_first in ranked[start:start + per_page]]
    course_ids = {int(f["course_key"]) for *_, f in page_hits}
    lesson_ids = {f["lesson_id"] for *_, f in page_hits if f.get("lesson_id")}
    courses, lessons = (visible or _visible)(course_ids, lesson_ids)
    hidden = 0
    for docnum, score, all_terms, own_first, stored in page_hits:
        course_id = int(stored["course_key"])
        if course_id not in courses or (stored["kind"] == "lesson" and stored.get("lesson_id") not in lessons):
            hidden += 1  # unpublished or retired in the database; the index has not caught up yet
            continue
        hit = Hit(kind=stored["kind"], course_slug=stored["course_slug"],
                  course_title=stored.get("course_title", ""), lesson_slug=stored.get("lesson_slug"),
                  title=stored.get("title", ""),
                  audiences=[a for a in (stored.get("audiences") or "").split(",") if a],
                  score=score, all_terms=all_terms, own_audience=own_first,
                  lesson_id=stored.get("lesson_id"), course_id=course_id)
        hit.snippet = _snippet(stored.get("text") or "", terms)
        cue = _best_cue(stored.get("cues"), terms)
        if cue is not None:
            hit.caption_start = cue[0]
            hit.caption_snippet = _snippet(cue[1], terms)
        if not hit.snippet and not cue:
            hit.snippet = _snippet(stored.get("title") or "", terms)
        result.hits.append(hit)
    result.total = max(len(result.hits), total - hidden)
    return result


def _prune(searcher, groups, enough: int):
    """A long word the index has plenty of stands alone: its parts are only a fallback for a word
    the texts do not use as such (防诈骗 → 诈骗), and matching them costs time on common parts."""
    pruned = []
    for group in groups:
        longest = group[0]
        frequency = sum(searcher.doc_frequency(name, longest) for name in WORD_FIELDS)
        pruned.append([longest] if len(group) > 1 and frequency >= enough else group)
    return pruned


def _rank(searcher, groups, unit, base, own_docs: set[int], exclude: set[int]):
    """Every match of any word, scored by Whoosh, ordered: all words first, then the learner's
    audience, then score. [(docnum, score, all words, own audience)]"""
    results = searcher.search(any_query(groups, unit), limit=None, filter=base)
    pairs = [(docnum, score) for score, docnum in results.top_n if docnum not in exclude]
    if not pairs:
        return []
    if len(groups) == 1:
        complete = {docnum for docnum, _ in pairs}  # one group: every match has all of it
    else:
        complete = set(searcher.docs_for_query(all_query(groups, unit)))
    rows = [(docnum, score, docnum in complete, docnum in own_docs) for docnum, score in pairs]
    rows.sort(key=lambda row: (not row[2], not row[3], -row[1]))
    return rows


def popular_courses(audience: str | None, limit: int = 4) -> list[Course]:
    """Suggestions for an empty result: the published courses of this audience (all audiences
    when unknown) that most learners have started."""
    learners = (db.session.query(Lesson.course_id.label("course_id"),
                                 func.count(func.distinct(LessonProgress.user_id)).label("n"))
                .join(LessonProgress, LessonProgress.lesson_id == Lesson.id)
                .group_by(Lesson.course_id).subquery())
    query = (db.session.query(Course).outerjoin(learners, learners.c.course_id == Course.id)
             .filter(Course.published.is_(True)))
    if audience:
        query = query.join(CourseAudience, CourseAudience.course_id == Course.id).filter(
            CourseAudience.audience == audience)
    return query.order_by(func.coalesce(learners.c.n, 0).desc(), Course.id).limit(limit).all()


def format_seconds(seconds: int | None) -> str:
    if seconds is None:
        return ""
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"
