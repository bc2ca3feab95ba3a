"""The demo packages under content/ as a reviewer checks them (issue 13): quiz keys a learner cannot
pass by pattern, 学时 no more than the video-length tier earns, and 您 (never 你) in elder courses.

Every package is read with the importer's own reader (lms/courses/importer.load_package), so what is
checked is what an import would store. `quiz_patterns(root)` also runs on an older copy of content/
(the "before" figures in a report) without a database.
"""
from __future__ import annotations

from collections import Counter
from decimal import Decimal
from pathlib import Path

import pytest

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


PACKAGES = package_folders(CONTENT)


@pytest.mark.parametrize("folder", PACKAGES, ids=[p.name for p in PACKAGES])
def test_quiz_keys_have_no_pattern(folder):
    assert course_patterns(load_package(folder)) == []


@pytest.mark.parametrize("folder", PACKAGES, ids=[p.name for p in PACKAGES])
def test_credit_hours_no_more_than_the_video_earns(folder):
    spec = load_package(folder)
    earned = tier_hours(video_minutes(spec))
    if spec.credit_hours is not None:
        assert spec.credit_hours <= earned or spec.credit_note, (
            f"{folder.name}: {spec.credit_hours} 学时 for {video_minutes(spec):.1f} min of video (tier: {earned})")


@pytest.mark.parametrize("folder", [p for p in PACKAGES if "elder" in load_package(p).audiences],
                         ids=lambda p: p.name)
def test_elder_courses_say_nin_never_ni(folder):
    spec = load_package(folder)
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


def test_the_checks_catch_a_pattern():
    """The checks themselves: a course keyed by pattern is caught on every count."""
    class Spec:
        lessons = [type("L", (), {"quiz": {"questions": (
            [{"kind": "single", "choices": [("对的长长的答案", True), ("错", False), ("错误", False)]}] * 5
            + [{"kind": "multiple", "choices": [("甲", True), ("乙", True), ("丙", False)]}] * 2
            + [{"kind": "truefalse", "choices": [("正确", False), ("错误", True)]}] * 4)}})()]
    found = course_patterns(Spec)
    assert len(found) == 5, found
