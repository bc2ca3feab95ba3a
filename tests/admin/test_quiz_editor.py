"""The quiz editor (issue 10, Quizzes): an author creates a lesson's quiz in the browser, adds single,
multiple, true/false and scenario questions, reorders, edits and retires them; bad input is named and
nothing is half-saved; editing never rewrites a past attempt; per-question statistics put weak questions
first; a quiz made here is the quiz.yaml of docs/content-format.md and reads back to the same quiz."""
from __future__ import annotations

import re
from decimal import Decimal

import pytest
import yaml
from sqlalchemy import event

from lms.courses.models import Course, CourseAudience, CourseAuthor, Lesson
from lms.extensions import db
from lms.quizzes import authoring, services
from lms.quizzes.stats import quiz_stats, scores_from_attempts, tally_from_answers
from lms.quizzes.format import quiz_document
from lms.quizzes.models import AnswerTally, Question, Quiz, QuizAnswer, QuizAttempt, ScoreTally
from lms.records.models import AuditLog
from tests.conftest import BrowserLikeClient
from tests.quizzing import open_quiz

SCAM_CALL = "显示为“北京市公安局”"


@pytest.fixture
def world(app, units, make_user):
    people = {
        "admin": make_user("county-admin", role="admin", unit="county", audience="cadre"),
        "author": make_user("teacher-a", role="instructor", unit="town-a", audience="cadre", full_name="李老师"),
        "learner": make_user("learner-a", unit="town-a"),
    }
    course = Course(slug="fraud-101", title="防范电信诈骗", credit_hours=Decimal("1"), published=True,
                    audience_rows=[CourseAudience(audience="elder")])
    db.session.add(course)
    db.session.flush()
    lessons = [Lesson(course_id=course.id, slug=f"l{n}", title=title, position=n, text_markdown="不转账",
                      text_html="<p>不转账</p>") for n, title in enumerate(["冒充公检法", "刷单返利"], start=1)]
    db.session.add_all(lessons + [CourseAuthor(course_id=course.id, user_id=people["author"].id)])
    db.session.commit()
    return {**people, "course": course, "lesson": lessons[0], "other_lesson": lessons[1]}


def signed_in(app, user) -> BrowserLikeClient:
    client = BrowserLikeClient(app.test_client())
    assert client.login(user.username).status_code == 302
    client.refresh_token("/my")
    return client


def post(client, path, data):
    return client.post(path, data={"csrf_token": client.token, **data})


def question_form(kind="single", text="接到自称公安的电话要转账，怎么办？", explanation="公安不会要求转账。",
                  choices=(("照做", False), ("挂断，拨打 96110 核实", True)), answer=None, scenario_kind="",
                  scenario_from="", messages="") -> dict:
    data = {"kind": kind, "text": text, "explanation": explanation, "scenario_kind": scenario_kind,
            "scenario_from": scenario_from, "scenario_messages": messages}
    for n, (choice, correct) in enumerate(choices):
        data[f"choices-{n}-text"] = choice
        if correct:
            data[f"choices-{n}-correct"] = "y"
    if answer is not None:
        data["answer"] = answer
    return data


def editor(lesson) -> str:
    return f"/admin/quizzes/lessons/{lesson.id}"


def make_quiz(client, lesson, pass_score="60", ask="", questions=None, enable=True) -> Quiz:
    """Create the lesson's quiz through the editor with these question forms and enable it."""
    assert post(client, editor(lesson), {"pass_score": pass_score, "ask": ask}).status_code == 302
    for form in questions or [question_form()]:
        response = post(client, editor(lesson) + "/questions/new", form)
        assert response.status_code == 302, response.get_data(as_text=True)
    if enable:
        assert post(client, editor(lesson) + "/state", {"enable": "1"}).status_code == 302
    return Quiz.query.filter_by(lesson_id=lesson.id).one()


FOUR_KINDS = [
    question_form(),
    question_form(kind="multiple", text="哪些信息不能告诉陌生人？", explanation="验证码和密码只能自己知道。",
                  choices=(("验证码", True), ("支付密码", True), ("今天的天气", False))),
    question_form(kind="truefalse", text="96110 是全国反诈预警专线。", explanation="96110 打来的电话要接听。",
                  choices=(), answer="true"),
    question_form(text="看看这通电话的记录。这是诈骗吗？", explanation="这是诈骗：挂断，不转账，拨打 96110 核实。",
                  choices=(("是诈骗", True), ("不是诈骗", False)), scenario_kind="call", scenario_from=SCAM_CALL,
                  messages="您的身份证涉嫌洗钱，请把存款转到安全账户。\n我：我从来没去过北京啊！"),
]


def answer(user, quiz, picks: dict[str, set[str]] | None = None, default_wrong=True) -> QuizAttempt:
    """A learner sits the quiz: for each question drawn, the choices whose text is in `picks[question text]`,
    else its first wrong choice (or its first choice)."""
    attempt = services.start_or_resume(user.id, quiz)
    by_position = {q.position: q for q in quiz.questions}
    shown = {}
    for index, item in enumerate(attempt.draw):
        question = by_position[item["q"]]
        wanted = (picks or {}).get(question.text)
        if wanted is None:
            wrong = [c for c in question.choices if not c.correct] if default_wrong else question.choices
            wanted = {wrong[0].text}
        positions = {c.position for c in question.choices if c.text in wanted}
        shown[index] = {item["c"].index(p) for p in positions}
    return services.finish_attempt(attempt, shown)


# ---- authoring ----------------------------------------------------------------------------------

def test_an_author_makes_a_quiz_with_every_kind_of_question_and_a_learner_takes_it(app, world):
    author = signed_in(app, world["author"])
    lesson = world["lesson"]
    listing = author.get("/admin/quizzes").get_data(as_text=True)
    assert "防范电信诈骗" in listing and "冒充公检法" in listing and "没有测验" in listing
    page = author.get(editor(lesson)).get_data(as_text=True)
    assert 'id="no-quiz"' in page and "创建测验" in page

    quiz = make_quiz(author, lesson, pass_score="75", questions=FOUR_KINDS, enable=False)
    page = author.get(editor(lesson)).get_data(as_text=True)
    assert "这个测验没有启用" in page and "题目（4 道）" in page
    assert "✔ 挂断，拨打 96110 核实</strong>（正确答案）" in page and "✔ 正确</strong>（正确答案）" in page
    assert SCAM_CALL in page and 'class="scenario scenario-call"' in page  # shown as learners see it
    assert [q.kind for q in quiz.active_questions] == ["single", "multiple", "truefalse", "single"]
    assert quiz.active_questions[3].scenario == {"kind": "call", "from": SCAM_CALL, "messages": [
        {"who": "them", "text": "您的身份证涉嫌洗钱，请把存款转到安全账户。"}, {"who": "me", "text": "我从来没去过北京啊！"}]}

    learner = signed_in(app, world["learner"])
    assert learner.get(f"/lessons/{lesson.id}/quiz").status_code == 404  # not asked before it is enabled
    assert post(author, editor(lesson) + "/state", {"enable": "1"}).status_code == 302
    assert "启用中" in author.get("/admin/quizzes").get_data(as_text=True)
    taken = open_quiz(learner, lesson.id)
    assert len(taken.choices) == 4 and "75 分及格" in taken.html and "我从来没去过北京啊！" in taken.html

    actions = [row.action for row in AuditLog.query.order_by(AuditLog.id)]
    assert actions == ["quiz.create"] + ["question.create"] * 4 + ["quiz.enable"]
    assert {row.actor_id for row in AuditLog.query} == {world["author"].id}
    assert AuditLog.query.filter_by(action="question.create").first().target.startswith("question:")


def test_settings_change_the_pass_mark_and_draw_from_a_pool(app, world):
    author = signed_in(app, world["author"])
    lesson = world["lesson"]
    quiz = make_quiz(author, lesson, questions=FOUR_KINDS)
    assert post(author, editor(lesson), {"pass_score": "80", "ask": "2"}).status_code == 302
    db.session.refresh(quiz)
    assert (quiz.pass_score, quiz.ask) == (80, 2)
    assert AuditLog.query.filter_by(action="quiz.update").one().detail == "及格分 60 → 80；每次抽题 全部 → 2"
    learner = signed_in(app, world["learner"])
    taken = open_quiz(learner, lesson.id)
    assert len(taken.choices) == 2 and "这 2 道题是从 4 道题里随机抽的" in taken.html


BAD_QUESTIONS = [
    (dict(choices=(("照做", False), ("不理", False))), "单选题必须恰好有一个正确选项"),
    (dict(choices=(("挂断", True), ("核实", True), ("照做", False))), "单选题必须恰好有一个正确选项"),
    (dict(kind="multiple", choices=(("验证码", True), ("密码", False), ("天气", False))), "多选题至少要有两个正确选项"),
    (dict(kind="multiple", choices=(("验证码", False), ("密码", False))), "多选题至少要有两个正确选项"),
    (dict(kind="multiple", choices=(("验证码", True), ("密码", True))), "多选题不能所有选项都正确"),
    (dict(choices=(("挂断", True),)), "至少需要两个选项"),
    (dict(choices=(("挂断", True), ("", True))), "第 2 个选项勾了“正确”，但没有填文字"),
    (dict(text="   "), "请填写题目"),
    (dict(explanation=""), "请填写解析"),
    (dict(kind="truefalse", choices=()), "请选择判断题的正确答案"),
    (dict(scenario_kind="sms", messages="  \n "), "情景至少要有一条消息"),
    (dict(messages="我：喂？"), "请选择情景类型"),
]


@pytest.mark.parametrize("change, message", BAD_QUESTIONS)
def test_a_bad_question_is_named_and_nothing_is_saved(app, world, change, message):
    author = signed_in(app, world["author"])
    lesson = world["lesson"]
    quiz = make_quiz(author, lesson)
    before = (Question.query.count(), AuditLog.query.count())
    response = post(author, editor(lesson) + "/questions/new", question_form(**change))
    page = response.get_data(as_text=True)
    assert response.status_code == 400 and message in page
    assert (Question.query.count(), AuditLog.query.count()) == before
    # the same input on an existing question leaves it as it was
    question = quiz.active_questions[0]
    response = post(author, editor(lesson) + f"/questions/{question.id}", question_form(**change))
    assert response.status_code == 400 and message in response.get_data(as_text=True)
    db.session.expire_all()
    assert [c.text for c in question.choices] == ["照做", "挂断，拨打 96110 核实"] and not question.retired
    assert AuditLog.query.count() == before[1]


@pytest.mark.parametrize("settings, message", [
    ({"pass_score": "0"}, "及格分必须是 1 到 100 之间的整数"),
    ({"pass_score": "101"}, "及格分必须是 1 到 100 之间的整数"),
    ({"pass_score": "六十"}, "及格分必须是 1 到 100 之间的整数"),
    ({"pass_score": ""}, "请填写及格分"),
    ({"ask": "5"}, "每次抽题数（5）不能多于题库里的题数（现有 4 道）"),
    ({"ask": "0"}, "每次抽题数至少是 1"),
    ({"ask": "两道"}, "每次抽题数必须是整数"),
])
def test_bad_settings_are_named_and_nothing_is_saved(app, world, settings, message):
    author = signed_in(app, world["author"])
    lesson = world["lesson"]
    quiz = make_quiz(author, lesson, pass_score="70", questions=FOUR_KINDS)
    audits = AuditLog.query.count()
    response = post(author, editor(lesson), {"pass_score": "70", "ask": "", **settings})
    assert response.status_code == 400 and message in response.get_data(as_text=True)
    db.session.refresh(quiz)
    assert (quiz.pass_score, quiz.ask, AuditLog.query.count()) == (70, None, audits)


def test_a_quiz_cannot_be_enabled_empty_nor_left_without_questions(app, world):
    author = signed_in(app, world["author"])
    lesson = world["lesson"]
    assert post(author, editor(lesson), {"pass_score": "60"}).status_code == 302
    refused = post(author, editor(lesson) + "/state", {"enable": "1"})
    assert refused.status_code == 400 and "至少添加一道题才能启用" in refused.get_data(as_text=True)
    quiz = make_quiz(author, world["other_lesson"])
    last = quiz.active_questions[0]
    refused = post(author, editor(world["other_lesson"]) + f"/questions/{last.id}/retire", {})
    assert refused.status_code == 400 and "启用中的测验至少要有一道题" in refused.get_data(as_text=True)
    assert db.session.get(Question, last.id) is not None


def test_reordering_changes_the_order_learners_get(app, world):
    author = signed_in(app, world["author"])
    lesson = world["lesson"]
    quiz = make_quiz(author, lesson, questions=FOUR_KINDS[:3])
    truefalse = quiz.active_questions[2]
    assert post(author, editor(lesson) + f"/questions/{truefalse.id}/move", {"direction": "up"}).status_code == 302
    assert post(author, editor(lesson) + f"/questions/{truefalse.id}/move", {"direction": "up"}).status_code == 302
    db.session.expire_all()
    assert [q.kind for q in quiz.active_questions] == ["truefalse", "single", "multiple"]
    page = author.get(editor(lesson)).get_data(as_text=True)
    assert page.index("96110 是全国反诈预警专线") < page.index("接到自称公安的电话")
    taken = open_quiz(signed_in(app, world["learner"]), lesson.id).html
    assert taken.index("96110 是全国反诈预警专线") < taken.index("接到自称公安的电话") < taken.index("哪些信息不能告诉陌生人")
    assert [a.detail for a in AuditLog.query.filter_by(action="question.move")] == ["第 3 题 → 第 2 题", "第 2 题 → 第 1 题"]


def test_editing_an_unanswered_question_changes_it_in_place(app, world):
    author = signed_in(app, world["author"])
    lesson = world["lesson"]
    quiz = make_quiz(author, lesson)
    question = quiz.active_questions[0]
    form = question_form(text="接到“公安”电话要转账，怎么办？", choices=(("照做", False), ("挂断核实", True), ("问家人", False)))
    assert post(author, editor(lesson) + f"/questions/{question.id}", form).status_code == 302
    db.session.expire_all()
    assert [q.id for q in quiz.active_questions] == [question.id] and not quiz.questions[1:]
    assert [c.text for c in question.choices] == ["照做", "挂断核实", "问家人"]
    assert AuditLog.query.filter_by(action="question.update").one().detail == "改了题目、选项"
    page = author.get(editor(lesson) + f"/questions/{question.id}").get_data(as_text=True)
    assert "挂断核实" in page and 'id="question-answered"' not in page


def test_editing_an_answered_question_never_rewrites_past_attempts(app, world, make_user):
    author = signed_in(app, world["author"])
    lesson = world["lesson"]
    quiz = make_quiz(author, lesson, questions=FOUR_KINDS[:3])
    first = quiz.active_questions[0]
    learner = world["learner"]
    right = {"接到自称公安的电话要转账，怎么办？": {"挂断，拨打 96110 核实"}, "哪些信息不能告诉陌生人？": {"验证码", "支付密码"},
             "96110 是全国反诈预警专线。": {"正确"}}
    finished = answer(learner, quiz, right)
    assert (finished.score, finished.passed) == (100, True)
    # another learner is half-way: one answer committed (长辈版 看答案) to the question about to change
    halfway = make_user("halfway")
    open_attempt = services.start_or_resume(halfway.id, quiz)
    item = next(i for i, d in enumerate(open_attempt.draw) if d["q"] == first.position)
    services.commit_answer(open_attempt, item, {0})

    page = author.get(editor(lesson) + f"/questions/{first.id}").get_data(as_text=True)
    assert "已有学员答过这道题（已交卷的作答 1 次）" in page
    changed = question_form(text="接到自称公安的电话要转账，怎么办？", choices=(("照做", True), ("挂断，拨打 96110 核实", False)))
    response = post(author, editor(lesson) + f"/questions/{first.id}", changed)
    assert response.status_code == 302
    assert "已保存为新版本" in author.get(editor(lesson)).get_data(as_text=True)

    db.session.expire_all()
    old = db.session.get(Question, first.id)
    new = quiz.active_questions[0]
    assert old.retired and new.id != old.id and new.position not in {q.position for q in quiz.questions if q is not new}
    assert [(c.text, c.correct) for c in old.choices] == [("照做", False), ("挂断，拨打 96110 核实", True)]
    # the finished attempt: same score, and it still shows the version that was answered, marked right
    attempt = db.session.get(QuizAttempt, finished.id)
    assert (attempt.score, attempt.passed) == (100, True)
    shown = services.shown_questions(attempt)
    assert shown[0].question.id == old.id and shown[0].verdict is True
    assert [c.text for c in shown[0].choices if c.correct] == ["挂断，拨打 96110 核实"]
    # the half-way attempt drew the old version: it is dropped, and the learner starts on the new one
    fresh = services.start_or_resume(halfway.id, quiz)
    assert not fresh.answers_given and old.position not in {d["q"] for d in fresh.draw}
    assert QuizAttempt.query.filter_by(user_id=halfway.id).count() == 1
    revise = AuditLog.query.filter_by(action="question.revise").one()
    assert revise.target == f"question:{new.id}" and f"question:{first.id}" in revise.detail
    # the finished attempt's answer stays with the old version in the statistics (the dropped open
    # attempt never counted); the new version starts from none
    stats = {s.question.id: s for s in quiz_stats(quiz).questions}
    assert (stats[old.id].answers, stats[old.id].right, stats[old.id].number) == (1, 1, None)
    assert stats[new.id].answers == 0 and stats[new.id].number == 1


def test_retiring_deletes_an_unanswered_question_and_keeps_an_answered_one(app, world):
    author = signed_in(app, world["author"])
    lesson = world["lesson"]
    quiz = make_quiz(author, lesson, questions=FOUR_KINDS)
    answer(world["learner"], quiz)
    extra = authoring.add_question(world["author"], quiz, {
        "kind": "single", "text": "新题", "explanation": "解析", "choices": [("甲", True), ("乙", False)]})
    assert post(author, editor(lesson) + f"/questions/{extra.id}/retire", {}).status_code == 302
    assert db.session.get(Question, extra.id) is None
    assert AuditLog.query.filter_by(action="question.delete").count() == 1

    answered = quiz.active_questions[1]
    assert post(author, editor(lesson) + f"/questions/{answered.id}/retire", {}).status_code == 302
    db.session.expire_all()
    assert answered.retired and len(quiz.active_questions) == 3
    page = author.get(editor(lesson)).get_data(as_text=True)
    retired = page[page.index('id="retired-questions"'):]
    assert "哪些信息不能告诉陌生人？" in retired and "作答 1 次" in retired
    taken = open_quiz(signed_in(app, world["learner"]), lesson.id)
    assert "哪些信息不能告诉陌生人" not in taken.html and len(taken.choices) == 3

    assert post(author, editor(lesson) + f"/questions/{answered.id}/restore", {}).status_code == 302
    db.session.expire_all()
    assert not answered.retired and quiz.active_questions[-1].id == answered.id
    assert [a.action for a in AuditLog.query.filter(AuditLog.action.in_(["question.retire", "question.restore"]))
            .order_by(AuditLog.id)] == ["question.retire", "question.restore"]


def test_retiring_below_the_number_drawn_is_refused(app, world):
    author = signed_in(app, world["author"])
    lesson = world["lesson"]
    quiz = make_quiz(author, lesson, ask="", questions=FOUR_KINDS)
    assert post(author, editor(lesson), {"pass_score": "60", "ask": "4"}).status_code == 302
    response = post(author, editor(lesson) + f"/questions/{quiz.active_questions[0].id}/retire", {})
    assert response.status_code == 400 and "请先把每次抽题数改小" in response.get_data(as_text=True)
    db.session.expire_all()
    assert len(quiz.active_questions) == 4


# ---- statistics ---------------------------------------------------------------------------------

def test_statistics_show_share_right_and_the_most_chosen_wrong_choice_weakest_first(app, world, make_user):
    author = signed_in(app, world["author"])
    lesson = world["lesson"]
    quiz = make_quiz(author, lesson, questions=FOUR_KINDS[:3] + [question_form(
        text="冒充客服说要退款，先要验证码，怎么办？", explanation="客服不会要验证码。",
        choices=(("把验证码给他", False), ("挂断，打官方电话", True), ("先转一点钱试试", False)))])
    empty = author.get(editor(lesson) + "/stats").get_data(as_text=True)
    assert 'id="stats-empty"' in empty
    single, multiple, truefalse, refund = (q.text for q in quiz.active_questions)
    # 10 learners: the single-choice question 9 right; the multiple-choice one 2 right (most forget 支付密码,
    # four also tick 今天的天气); true/false 6 right; refund 4 right, 5 give the code, 1 sends money
    for n in range(10):
        picks = {single: {"挂断，拨打 96110 核实"} if n < 9 else {"照做"},
                 multiple: {"验证码", "支付密码"} if n < 2 else ({"验证码", "今天的天气"} if n < 6 else {"验证码"}),
                 truefalse: {"正确"} if n < 6 else {"错误"},
                 refund: {"挂断，打官方电话"} if n < 4 else ({"把验证码给他"} if n < 9 else {"先转一点钱试试"})}
        answer(make_user(f"learner{n}"), quiz, picks)
    stats = quiz_stats(quiz)
    assert stats.attempts == 10 and stats.answers == 40 and stats.passed == 4
    # counted as attempts were submitted, the same as one aggregate over all committed answers
    assert sorted((t.quiz_id, t.question_position, t.choices_json, t.correct, t.answers) for t in AnswerTally.query) \
        == sorted(tuple(row) for row in tally_from_answers(quiz.id))
    assert sorted((t.quiz_id, t.score, t.passed, t.attempts) for t in ScoreTally.query) \
        == sorted(tuple(row) for row in scores_from_attempts(quiz.id)) == [(quiz.id, 0, False, 1), (quiz.id, 25, False, 3),
                                                                            (quiz.id, 50, False, 2), (quiz.id, 75, True, 2),
                                                                            (quiz.id, 100, True, 2)]
    assert stats.average == (0 + 75 + 100 + 150 + 200) / 10
    assert [(s.question.text, s.answers, s.right) for s in stats.questions] == [
        (multiple, 10, 2), (refund, 10, 4), (truefalse, 10, 6), (single, 10, 9)]
    assert [(s.top_wrong.choice.text, s.top_wrong.picked) for s in stats.questions] == [
        ("今天的天气", 4), ("把验证码给他", 5), ("错误", 4), ("照做", 1)]

    page = author.get(editor(lesson) + "/stats").get_data(as_text=True)
    table = page[page.index('id="stats-table"'):]
    assert table.index(multiple) < table.index(refund) < table.index(truefalse) < table.index(single)
    assert "20%" in table and "把验证码给他" in table and "5 次，占全部作答的 50%" in table
    assert table.count("答对率低") == 2  # 20% and 40%: fewer than half right
    assert re.search(r'id="fig-attempts"><span class="figure-value">10<', page)


def test_statistics_take_a_constant_number_of_queries_however_many_attempts(app, world, make_user):
    """The page reads counts kept as attempts are submitted: 3 attempts or 30, the same statements run."""
    author = signed_in(app, world["author"])
    quiz = make_quiz(author, world["lesson"], questions=FOUR_KINDS)

    def statements() -> int:
        seen = []
        listener = lambda *args: seen.append(1)  # noqa: E731
        event.listen(db.engine, "before_cursor_execute", listener)
        try:
            db.session.expire_all()
            quiz_stats(db.session.get(Quiz, quiz.id))
        finally:
            event.remove(db.engine, "before_cursor_execute", listener)
        return len(seen)

    for n in range(3):
        answer(make_user(f"a{n}"), quiz)
    few = statements()
    for n in range(27):
        answer(make_user(f"b{n}"), quiz)
    assert statements() == few <= 5  # the quiz, the two tallies, the questions, their choices
    assert QuizAnswer.query.count() == 120 and quiz_stats(quiz).answers == 120


# ---- the quiz.yaml format ---------------------------------------------------------------------------

def test_a_quiz_made_in_the_browser_is_a_quiz_yaml_that_imports_back_the_same(app, world, tmp_path):
    from lms.courses.importer import _load_quiz, _YamlFile

    author = signed_in(app, world["author"])
    quiz = make_quiz(author, world["lesson"], pass_score="80", questions=FOUR_KINDS)
    assert post(author, editor(world["lesson"]), {"pass_score": "80", "ask": "3"}).status_code == 302
    db.session.refresh(quiz)
    document = quiz_document(quiz)
    assert document["ask"] == 3 and len(document["pool"]) == 4 and "questions" not in document
    assert document["pool"][2] == {"type": "truefalse", "text": "96110 是全国反诈预警专线。", "answer": True,
                                   "explanation": "96110 打来的电话要接听。"}
    path = tmp_path / "quiz.yaml"
    path.write_text(yaml.safe_dump(document, allow_unicode=True, sort_keys=False), encoding="utf-8")
    spec = _load_quiz(_YamlFile(path))
    copy = Quiz(lesson_id=world["other_lesson"].id, pass_score=spec["pass_score"], ask=spec["ask"])
    db.session.add(copy)
    authoring.write_questions(copy, spec["questions"])
    db.session.commit()
    assert quiz_document(copy) == document


def test_reimporting_a_package_retires_answered_questions_instead_of_rewriting_them(app, tmp_path, test_video,
                                                                                 make_user):
    """The import follows the editor's rule: a changed question that learners answered is kept, retired."""
    from lms.courses.importer import import_package
    from tests.conftest import QUIZ, write_package

    package = write_package(tmp_path / "content", test_video)
    course, _ = import_package(package)
    quiz = course.active_lessons[0].quiz
    attempt = answer(make_user(), quiz)
    original = [q.id for q in quiz.active_questions]
    changed = dict(QUIZ, questions=[dict(QUIZ["questions"][0], text="改过的第一题")] + QUIZ["questions"][1:])
    (package / "01-lesson" / "quiz.yaml").write_text(yaml.safe_dump(changed, allow_unicode=True), encoding="utf-8")
    import_package(package)
    db.session.expire_all()
    assert [q.text for q in quiz.active_questions][0] == "改过的第一题"
    assert [q.id for q in quiz.active_questions][1:] == original[1:]  # unchanged questions stay the same
    assert db.session.get(Question, original[0]).retired
    assert services.shown_questions(db.session.get(QuizAttempt, attempt.id))[0].question.id == original[0]


# ---- pages and races ------------------------------------------------------------------------------

def test_editor_pages_are_light_and_keep_the_content_security_policy(app, world):
    author = signed_in(app, world["author"])
    lesson = world["lesson"]
    quiz = make_quiz(author, lesson, questions=FOUR_KINDS)
    answer(world["learner"], quiz)
    for path in ("/admin/quizzes", editor(lesson), editor(lesson) + "/questions/new?kind=multiple",
                 editor(lesson) + f"/questions/{quiz.active_questions[3].id}", editor(lesson) + "/stats"):
        response = author.get(path)
        page = response.get_data(as_text=True)
        assert response.status_code == 200 and len(response.data) < 150_000, path
        assert "style=" not in page and not re.search(r"<script(?![^>]*\bsrc=)", page), path
        assert '<a href="/admin/quizzes" aria-current="page">测验</a>' in page, path
    # without JavaScript every field of a new question is there; the script only hides unused ones
    page = author.get(editor(lesson) + "/questions/new?kind=single&scenario=call").get_data(as_text=True)
    assert 'name="choices-3-text"' in page and 'name="answer"' in page and 'selected value="call"' in page
    assert "js/quiz-editor.js" in page


def test_two_editors_adding_at_once_never_share_a_position(app, world, monkeypatch):
    """The second editor computed the same next position as the first: the database refuses the
    duplicate and the question is written at the next free one."""
    author = signed_in(app, world["author"])
    quiz = make_quiz(author, world["lesson"])
    real, calls = authoring._next_position, []

    def stale(q):
        calls.append(1)
        return 0 if len(calls) == 1 else real(q)  # 0 is taken by the first question

    monkeypatch.setattr(authoring, "_next_position", stale)
    response = post(author, editor(world["lesson"]) + "/questions/new", question_form(text="第二题"))
    assert response.status_code == 302
    db.session.expire_all()
    assert sorted(q.position for q in quiz.questions) == [0, 1] and len(calls) == 2
    assert AuditLog.query.filter_by(action="question.create").count() == 2
