"""The demo packages under content/ as a reviewer checks them (issue 13): quiz keys a learner cannot
pass by pattern, 学时 no more than the video-length tier earns, and 您 (never 你) in elder courses.

Every package is read with the importer's own reader (lms/courses/importer.load_package), so what is
checked is what an import would store. `quiz_patterns(root)` also runs on an older copy of content/
(the "before" figures in a report) without a database.
"""
from __future__ import annotations

import re
import functools
from collections import Counter
from decimal import Decimal
from pathlib import Path

import pytest
import yaml

from lms.courses.importer import load_package, package_folders
from lms.media.slides import slide_durations

CONTENT = Path(__file__).resolve().parent.parent / "content"
TIERS = [(30, Decimal("1.0")), (15, Decimal("0.5")), (0, Decimal("0.25"))]  # Config.CREDIT_TIERS


def _questions(spec):
    return [q for lesson in spec.lessons if lesson.quiz for q in lesson.quiz["questions"]]


def course_patterns(spec) -> list[str]:
    """What gives a course's answers away, one line per pattern (empty: no pattern)."""
    questions = _questions(spec)
    found = []
    single = [q for q in questions if q["kind"] == "single"]
    if single:
        # position counted from the end too, so "last" is one bucket whatever the number of options
        positions = Counter(next(i for i, (_t, ok) in enumerate(q["choices"]) if ok) for q in single)
        last = sum(1 for q in single if q["choices"][-1][1])
        top, count = positions.most_common(1)[0]
        if count > 0.6 * len(single):
            found.append(f"单选：{count}/{len(single)} 题的正确答案在第 {top + 1} 项")
        if len(single) >= 5 and last == 0:
            found.append(f"单选：{len(single)} 题没有一题的正确答案在最后一项")
        longest = sum(1 for q in single if _uniquely_longest_is_right(q["choices"]))
        if longest > 0.4 * len(single):
            found.append(f"单选：{longest}/{len(single)} 题的正确答案是唯一最长的选项")
    multiple = [q for q in questions if q["kind"] == "multiple"]
    if multiple and all(_right_all_first(q["choices"]) for q in multiple):
        found.append(f"多选：全部 {len(multiple)} 题的正确选项都排在前面")
    truefalse = [q["choices"][0][1] for q in questions if q["kind"] == "truefalse"]
    if len(truefalse) >= 2:
        keyed_true = sum(truefalse)
        if max(keyed_true, len(truefalse) - keyed_true) > 0.75 * len(truefalse):
            found.append(f"判断：{len(truefalse)} 题中 {keyed_true} 题答案为“正确”")
    return found


def _uniquely_longest_is_right(choices) -> bool:
    lengths = [len(text) for text, _ok in choices]
    longest = max(lengths)
    return lengths.count(longest) == 1 and choices[lengths.index(longest)][1]


def _right_all_first(choices) -> bool:
    flags = [ok for _t, ok in choices]
    right = sum(flags)
    return all(flags[:right])


def quiz_patterns(root: Path = CONTENT) -> dict[str, list[str]]:
    return {folder.name: course_patterns(load_package(folder)) for folder in package_folders(root)}


def pattern_counts(root: Path = CONTENT) -> dict[str, tuple[int, int]]:
    """Totals over all packages, as the issue counts them: (hits, questions) per tell."""
    specs = [load_package(folder) for folder in package_folders(root)]
    questions = [q for spec in specs for q in _questions(spec)]
    single = [q for q in questions if q["kind"] == "single"]
    multiple = [q for q in questions if q["kind"] == "multiple"]
    truefalse = [q for q in questions if q["kind"] == "truefalse"]
    return {
        "单选正确答案在最后一项": (sum(q["choices"][-1][1] for q in single), len(single)),
        "单选正确答案在第一项": (sum(q["choices"][0][1] for q in single), len(single)),
        "单选正确答案唯一最长": (sum(_uniquely_longest_is_right(q["choices"]) for q in single), len(single)),
        "多选正确选项全排在前": (sum(_right_all_first(q["choices"]) for q in multiple), len(multiple)),
        "判断题答案为“正确”": (sum(q["choices"][0][1] for q in truefalse), len(truefalse)),
    }


def video_minutes(spec) -> float:
    """Minutes of video the slides render to (the demo packages supply no video files)."""
    return sum(sum(slide_durations(lesson.slides)) for lesson in spec.lessons if lesson.slides) / 60


def tier_hours(minutes: float) -> Decimal:
    return next(hours for threshold, hours in TIERS if minutes >= threshold)


MIN_LESSON_SECONDS, MAX_LESSON_SECONDS = 90, 300  # short videos: 1.5–5 minutes
ELDER_MAX_CHARS_PER_SECOND = 3.5
ELDER_MAX_SENTENCE = 30
TRIVIA = re.compile(r"哪一年|哪年|哪一天|几月几日|几月几号|什么时候(发布|颁布|提出|成立|实施)|(谁|哪位).{0,6}(发明|提出|发现|首先)")
SENTENCE_END = re.compile(r"[。！？；!?;\n]")


def _sentences(text: str) -> list[str]:
    """Sentences of plain text or Markdown (headings, list marks and emphasis taken off)."""
    text = re.sub(r"^\s*(#+|[-*+]|\d+[.、])\s*", "", text, flags=re.M)
    text = re.sub(r"[*_`>|]", "", text)
    return [part.strip() for part in SENTENCE_END.split(text) if part.strip()]


def lesson_problems(spec) -> list[str]:
    """What a reviewer would send back, one line each: video length, caption pace and sentence length
    for elders, slide text that does not fit, trivia questions, missing sources."""
    elder = "elder" in spec.audiences
    found = []
    if not spec.sources:
        found.append("course.yaml：没有 sources（参考来源）")
    for lesson in spec.lessons:
        at = lesson.slug
        if lesson.slides:
            durations = slide_durations(lesson.slides)
            total = sum(durations)
            if not MIN_LESSON_SECONDS <= total <= MAX_LESSON_SECONDS:
                found.append(f"{at}：视频 {total:.0f} 秒，应为 {MIN_LESSON_SECONDS}–{MAX_LESSON_SECONDS} 秒")
            for n, (slide, seconds) in enumerate(zip(lesson.slides, durations), start=1):
                caption = slide.get("caption", "")
                if elder and len(caption) / seconds > ELDER_MAX_CHARS_PER_SECOND:
                    found.append(f"{at} 第{n}张：字幕 {len(caption) / seconds:.1f} 字/秒")
                if len(slide.get("title", "")) > 14:
                    found.append(f"{at} 第{n}张：标题超过 14 字")
                points = slide.get("points") or []
                if len(points) > 3 or any(len(point) > 16 for point in points):
                    found.append(f"{at} 第{n}张：要点多于 3 条或超过 16 字")
        if elder:
            texts = [lesson.text] + [slide.get("caption", "") for slide in lesson.slides or []]
            long = [sentence for text in texts for sentence in _sentences(text) if len(sentence) > ELDER_MAX_SENTENCE]
            found += [f"{at}：句子超过 {ELDER_MAX_SENTENCE} 字：{sentence}" for sentence in long]
        for q in (lesson.quiz or {}).get("questions", []):
            if TRIVIA.search(q["text"]):
                found.append(f"{at}：考记忆的题（年份、日期、人名）：{q['text']}")
    return found


PACKAGES = package_folders(CONTENT)


@functools.lru_cache(maxsize=None)
def spec_of(folder: Path):
    return load_package(folder)


@pytest.mark.parametrize("folder", PACKAGES, ids=[p.name for p in PACKAGES])
def test_quiz_keys_have_no_pattern(folder):
    assert course_patterns(spec_of(folder)) == []


@pytest.mark.parametrize("folder", PACKAGES, ids=[p.name for p in PACKAGES])
def test_credit_hours_no_more_than_the_video_earns(folder):
    spec = spec_of(folder)
    earned = tier_hours(video_minutes(spec))
    if spec.credit_hours is not None:
        assert spec.credit_hours <= earned or spec.credit_note, (
            f"{folder.name}: {spec.credit_hours} 学时 for {video_minutes(spec):.1f} min of video (tier: {earned})")


def _audiences(folder: Path) -> list:
    """Read straight from course.yaml, so that collecting the tests never stops at a broken package."""
    data = yaml.safe_load((folder / "course.yaml").read_text(encoding="utf-8"))
    return data.get("audiences") or [] if isinstance(data, dict) else []


@pytest.mark.parametrize("folder", [p for p in PACKAGES if "elder" in _audiences(p)], ids=lambda p: p.name)
def test_elder_courses_say_nin_never_ni(folder):
    spec = spec_of(folder)
    texts = []
    for lesson in spec.lessons:
        texts.append((lesson.slug, lesson.text))
        for slide in lesson.slides or []:
            texts += [(lesson.slug, slide.get("title", "")), (lesson.slug, slide.get("caption", ""))]
            texts += [(lesson.slug, point) for point in slide.get("points") or []]
        for q in (lesson.quiz or {}).get("questions", []):
            texts += [(lesson.slug, q["text"]), (lesson.slug, q["explanation"])]
            texts += [(lesson.slug, text) for text, _ok in q["choices"]]
            for message in (q["scenario"] or {}).get("messages", []):
                texts.append((lesson.slug, message["text"]))
    assert [(slug, text) for slug, text in texts if "你" in text] == []


@pytest.mark.parametrize("folder", PACKAGES, ids=[p.name for p in PACKAGES])
def test_lessons_are_short_videos_an_elder_can_follow_with_their_sources(folder):
    """1.5–5 minute videos; in elder courses captions ≤ 3.5 characters a second and sentences ≤ 30
    characters; slide text that fits; scenario questions rather than dates and names; sources listed."""
    assert lesson_problems(spec_of(folder)) == []


PROGRAMME = {"elder": 6, "farmer": 5, "cadre": 5, "worker": 3, "youth": 3}  # courses each group needs (issue 13)


def test_the_demo_content_is_a_programme_for_all_five_groups():
    specs = [spec_of(folder) for folder in PACKAGES]
    courses = {code: sorted(spec.slug for spec in specs if code in spec.audiences) for code in PROGRAMME}
    assert {code: len(slugs) for code, slugs in courses.items() if len(slugs) < PROGRAMME[code]} == {}, courses
    assert sum(len(spec.lessons) for spec in specs) >= 100


def test_the_checks_catch_a_pattern():
    """The checks themselves: a course keyed by pattern is caught on every count."""
    class Spec:
        lessons = [type("L", (), {"quiz": {"questions": (
            [{"kind": "single", "choices": [("对的长长的答案", True), ("错", False), ("错误", False)]}] * 5
            + [{"kind": "multiple", "choices": [("甲", True), ("乙", True), ("丙", False)]}] * 2
            + [{"kind": "truefalse", "choices": [("正确", False), ("错误", True)]}] * 4)}})()]
    found = course_patterns(Spec)
    assert len(found) == 5, found
