"""科普学堂 — the application factory."""
from pathlib import Path

from flask import Flask, has_request_context, request
from sqlalchemy import event
from sqlalchemy.engine import Engine

from lms.config import Config
from lms.extensions import babel, csrf, db, login_manager, migrate

MIGRATIONS_DIR = str(Path(__file__).parent / "migrations")


def create_app(config: dict | None = None) -> Flask:
    app = Flask(__name__)
    from lms.routing import LazyBuildRule

    app.url_rule_class = LazyBuildRule  # url_for builders compiled at first use: ~45 ms less start-up
    settings = Config(**(config or {}))
    app.config.from_object(settings)
    if app.config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite"):
        app.config.setdefault("SQLALCHEMY_ENGINE_OPTIONS", {"connect_args": {"timeout": 30}})
    else:  # after a database restart, pooled connections are dead: test each before use (scripts/loadtest)
        app.config.setdefault("SQLALCHEMY_ENGINE_OPTIONS", {"pool_pre_ping": True})
    Path(app.config["DATA_DIR"]).mkdir(parents=True, exist_ok=True)

    db.init_app(app)
    migrate.init_app(app, db, directory=MIGRATIONS_DIR, render_as_batch=True)
    csrf.init_app(app)
    from lms.media import upload_gate

    upload_gate.init_app(app)  # judges upload requests before CSRF reads their body
    babel.init_app(app, locale_selector=_select_locale, timezone_selector=lambda: "Asia/Shanghai")
    app.after_request(_remember_locale)
    login_manager.init_app(app)
    login_manager.login_view = "accounts.login"
    login_manager.login_message = None

    from lms import models  # noqa: F401  (register every model with SQLAlchemy)
    from lms.courses import videos  # noqa: F401  (a video made ready by lms/media goes into its lesson)
    from lms.accounts.routes import bp as accounts_bp
    from lms.courses.routes import bp as courses_bp
    from lms.health import bp as health_bp
    from lms.media.routes import bp as media_bp
    from lms.quizzes.routes import bp as quizzes_bp
    from lms.records.routes import bp as records_bp
    from lms.records.assignment_routes import bp as assignments_bp
    from lms.search.routes import bp as search_bp
    from lms.elder.routes import bp as elder_bp
    from lms.classroom.routes import bp as classroom_bp
    from lms.admin.routes import bp as admin_bp

    for blueprint in (accounts_bp, courses_bp, quizzes_bp, media_bp, records_bp, assignments_bp, health_bp, elder_bp, classroom_bp, search_bp):
        app.register_blueprint(blueprint)
    app.register_blueprint(admin_bp)  # the console's home and navigation (lms/admin)
    from lms.accounts.people_routes import account_bp, bp as people_bp

    app.register_blueprint(people_bp)  # /admin/people (lms/accounts/people.py)
    app.register_blueprint(account_bp)  # /account/password: everyone's own password
    from lms.accounts.unit_routes import bp as units_bp

    app.register_blueprint(units_bp)  # /admin/units (lms/accounts/units.py)
    from lms.quizzes.authoring_routes import bp as quiz_editor_bp

    app.register_blueprint(quiz_editor_bp)  # /admin/quizzes: the quiz editor (lms/quizzes/authoring.py)
    from lms.courses.authoring_routes import bp as authoring_bp

    app.register_blueprint(authoring_bp)  # /admin/courses: course and lesson authoring (lms/courses/authoring.py)
    from lms.records.dashboard_routes import bp as dashboard_bp

    app.register_blueprint(dashboard_bp)  # /admin/dashboard: 统计图表 (lms/records/dashboard.py)
    from lms.practices.routes import bp as practices_bp

    app.register_blueprint(practices_bp)  # 练一练: phone practices on lesson pages (lms/practices)
    from lms.activities.routes import bp as activities_bp

    app.register_blueprint(activities_bp)  # /admin/activities and /activities/scan: 线下活动 (lms/activities)
    from lms.contests.routes import bp as contests_bp

    app.register_blueprint(contests_bp)  # /admin/contests and /contests: 知识竞赛 (lms/contests)
    from lms.records.certificate_routes import bp as certificates_bp
    from lms.records.correction_routes import bp as corrections_bp, closing_bp

    app.register_blueprint(certificates_bp)  # certificate PDFs and the public /verify/<code> (lms/records/certificates.py)
    app.register_blueprint(corrections_bp)  # a person's records and their reversal (lms/records/corrections.py)
    app.register_blueprint(closing_bp)  # /admin/closing: closing a year (lms/records/closing.py)
    from lms.assessment.routes import bp as assessment_bp

    app.register_blueprint(assessment_bp)  # /assessment and /admin/assessment: 科学素质自测 (lms/assessment)

    from lms.cli import register_commands

    register_commands(app)

    from lms import jobs, templating

    templating.init_app(app)
    jobs.init_app(app)

    from lms import db_resilience, http_security

    from lms.courses import fast_heartbeat

    fast_heartbeat.init_app(app)  # the usual heartbeat answered before Flask's per-request work
    db_resilience.init_app(app)  # a PostgreSQL restart: re-run the request or answer 503, never 500
    http_security.init_app(app)  # last: its ProxyFix must wrap every other WSGI layer
    return app


LOCALES = ("zh", "en")
LANG_COOKIE_MAX_AGE = 365 * 24 * 3600


def _select_locale():
    if not has_request_context():  # CLI commands and jobs speak the default language
        return "zh"
    requested = request.args.get("lang") or request.cookies.get("lang")
    if requested in LOCALES:
        return requested
    return "zh"


def _remember_locale(response):
    """An explicit ?lang= choice sticks: later pages without it keep the language."""
    requested = request.args.get("lang")
    if requested in LOCALES and request.cookies.get("lang") != requested:
        response.set_cookie("lang", requested, max_age=LANG_COOKIE_MAX_AGE, samesite="Lax", httponly=True,
                            secure=request.is_secure)
    return response


@event.listens_for(Engine, "connect")
def _sqlite_pragmas(dbapi_connection, connection_record):
    """WAL lets readers work while a writer commits; busy_timeout waits instead of failing."""
    if type(dbapi_connection).__module__.startswith("sqlite3"):
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA synchronous=FULL")  # a power cut must not lose credited hours
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()
