"""A quiz as docs/content-format.md describes it (quiz.yaml) — the one description of a quiz.

The importer (lms/courses/importer.py) parses quiz.yaml into a *spec*:
    {"pass_score": int, "ask": int | None,
     "questions": [{"kind", "text", "explanation", "choices": [(text, correct), ...], "scenario": dict | None}]}
and checks each question's choices with `choices_problem`; the editor (lms/quizzes/authoring.py) checks
with the same function and writes a spec's questions with `authoring.write_questions`; an export writes
`quiz_document(quiz)`, which the importer reads back to the same quiz.
"""
from __future__ import annotations

from flask_babel import gettext as _

from lms.quizzes.models import Question, Quiz

PASS_SCORE_MIN, PASS_SCORE_MAX = 1, 100
TRUE_FALSE = ("正确", "错误")  # a true/false question's two choices, in this order
SCENARIO_KINDS = ("call", "sms", "chat")
SCENARIO_SPEAKERS = ("them", "me")


def truefalse_choices(answer: bool) -> list[tuple[str, bool]]:
    return [(TRUE_FALSE[0], answer), (TRUE_FALSE[1], not answer)]


def choices_problem(kind: str, choices: list[tuple[str, bool]]) -> str | None:
    """What is wrong with a question's choices ([(text, correct)]), or None. A question scores only
    when exactly its right choices are picked, so: at least two choices; single choice exactly one
    right; multiple choice at least two right and at least one wrong (else ticking everything wins)."""
    if kind == "truefalse":
        return None
    right = sum(1 for _text, correct in choices if correct)
    if len(choices) < 2:
        return _("至少需要两个选项")
    if kind == "single" and right != 1:
        return _("单选题必须恰好有一个正确选项")
    if kind == "multiple" and right < 2:
        return _("多选题至少要有两个正确选项")
    if kind == "multiple" and right == len(choices):
        return _("多选题不能所有选项都正确：至少要有一个错误选项，否则全选就能得分")
    return None


def question_spec(question: Question) -> dict:
    """A stored question in the importer's parsed shape (what two versions are compared by)."""
    return {"kind": question.kind, "text": question.text, "explanation": question.explanation,
            "choices": [(c.text, c.correct) for c in question.choices], "scenario": question.scenario}


def question_document(question: Question) -> dict:
    """A question as quiz.yaml writes it."""
    doc = {"type": question.kind, "text": question.text}
    if question.scenario:
        scenario = {"kind": question.scenario["kind"]}
        if question.scenario.get("from"):
            scenario["from"] = question.scenario["from"]
        scenario["messages"] = [{"who": m["who"], "text": m["text"]} for m in question.scenario["messages"]]
        doc["scenario"] = scenario
    if question.kind == "truefalse":
        doc["answer"] = next(c.correct for c in question.choices if c.text == TRUE_FALSE[0])
    else:
        doc["choices"] = [{"text": c.text, "correct": True} if c.correct else {"text": c.text}
                          for c in question.choices]
    doc["explanation"] = question.explanation
    return doc


def quiz_document(quiz: Quiz) -> dict:
    """The quiz as quiz.yaml writes it: its questions still asked, in their order; `pool` + `ask` when
    an attempt draws some of them."""
    questions = [question_document(q) for q in quiz.active_questions]
    if quiz.ask:
        return {"pass_score": quiz.pass_score, "ask": quiz.ask, "pool": questions}
    return {"pass_score": quiz.pass_score, "questions": questions}
