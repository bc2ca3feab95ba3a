"""Taking a quiz over HTTP as a learner does: open it, read the page, answer by the choices' text.

Choices are shown in a per-attempt order and named by their place in it, so tests pick them by text,
as a person reads them, never by a fixed value.
"""
from __future__ import annotations

import html
import re

# the conftest QUIZ: its right answers, and an answer with every question wrong
RIGHT = {0: "挂断，拨打 96110 核实", 1: ["验证码", "支付密码"], 2: "正确"}
WRONG = {0: "马上转账", 1: "今天的天气", 2: "错误"}

_CHOICE = re.compile(r'name="q(\d+)" value="(\d+)"[^>]*>\s*<span>([^<]*)</span>')
_ATTEMPT = re.compile(r'name="attempt" value="([\w-]+)"')


class QuizPage:
    def __init__(self, page: str):
        self.html = page
        match = _ATTEMPT.search(page)
        self.attempt = match.group(1) if match else None
        self.choices: dict[int, dict[str, str]] = {}
        for index, value, text in _CHOICE.findall(page):
            self.choices.setdefault(int(index), {})[html.unescape(text)] = value

    def order(self, index: int) -> list[str]:
        """The choices of a question, in the order this attempt shows them."""
        return list(self.choices[index])

    def form(self, token: str, answers: dict[int, str | list[str]], **extra) -> dict:
        """The form a learner submits: the attempt, and each answer's shown place found by its text."""
        data = {"csrf_token": token, "attempt": self.attempt, **extra}
        for index, texts in answers.items():
            texts = [texts] if isinstance(texts, str) else texts
            data[f"q{index}"] = [self.choices[index][text] for text in texts]
        return data


def open_quiz(client, lesson_id: int) -> QuizPage:
    """GET the quiz (starting or resuming the attempt) and keep the page's CSRF token on the client."""
    page = client.get(f"/lessons/{lesson_id}/quiz").get_data(as_text=True)
    match = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page)
    if match:
        client.token = match.group(1)
    return QuizPage(page)


def submit_quiz(client, lesson_id: int, answers: dict[int, str | list[str]]):
    """Open the quiz and submit these answers (by text); the response is the result page."""
    page = open_quiz(client, lesson_id)
    return client.post(f"/lessons/{lesson_id}/quiz", data=page.form(client.token, answers))


def check_answer(client, lesson_id: int, page: QuizPage, index: int, answers: dict[int, str | list[str]]):
    """长辈版 看答案 on question `index`, with the form as it stands (`answers`, by text)."""
    return client.post(f"/lessons/{lesson_id}/quiz/check", data=page.form(client.token, answers, check=str(index)))


def pick(page, index: int, text: str) -> None:
    """In a browser (Playwright): tick the choice of question `index` whose text is `text`."""
    page.locator(f"#q{index} label.choice").filter(has=page.get_by_text(text, exact=True)).locator("input").check()
