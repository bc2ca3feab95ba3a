"""HTTP hardening: security headers on every response, a policy the pages really keep (no inline
script, handler or style), cookie flags, and forwarded headers believed only from declared proxies."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from lms.config import Config
from lms.extensions import db
from tests.conftest import _make_app
from tests.test_elder_browser import VIEWPORTS, open_tablet, site, type_pin  # noqa: F401  (site: a fixture)
from tests.test_browser import sign_in

LMS = Path(__file__).resolve().parents[2] / "lms"
EXPECTED_CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
                "media-src 'self' blob:; object-src 'none'; base-uri 'self'; form-action 'self'; "
                "frame-ancestors 'none'")

# what the policy blocks, as it would appear in a template or a rendered page
INLINE_CODE = {
    "inline <script>": re.compile(r"<script\b(?![^>]*\bsrc=)[^>]*>", re.I),
    "event handler attribute": re.compile(r"<[a-z][^>]*\son[a-z]+\s*=", re.I),
    "style attribute": re.compile(r"<[a-z][^>]*\sstyle\s*=", re.I),
    "<style> element": re.compile(r"<style\b", re.I),
    "javascript: URL": re.compile(r"javascript:", re.I),
}


def inline_code(html: str) -> list[str]:
    return [f"{what}: {match.group(0)[:80]}" for what, pattern in INLINE_CODE.items() for match in pattern.finditer(html)]


def assert_hardened(response, label):
    headers = response.headers
    assert headers.get("Content-Security-Policy") == EXPECTED_CSP, label
    assert headers.get("X-Content-Type-Options") == "nosniff", label
    assert headers.get("Referrer-Policy") == "same-origin", label
    assert headers.get("X-Frame-Options") == "DENY", label


def test_every_kind_of_response_carries_the_security_headers(app, course, browser_client, make_user):
    """Pages, JSON, static files, redirects, 404s, CSRF refusals and API errors all carry CSP (no
    'unsafe-inline', frame-ancestors 'none'), nosniff, Referrer-Policy and X-Frame-Options: DENY."""
    anonymous = app.test_client()
    for label, response in (
        ("sign-in page", anonymous.get("/login")),
        ("redirect to sign-in", anonymous.get("/")),
        ("health JSON", anonymous.get("/healthz")),
        ("static file", anonymous.get("/static/css/app.css")),
        ("404", anonymous.get("/no-such-page")),
        ("CSRF refusal", anonymous.post("/login", data={"username": "x", "password": "y"})),
    ):
        assert_hardened(response, label)
        response.close()
    browser_client.login(make_user().username)
    lesson = course.active_lessons[0]
    page = browser_client.get(f"/courses/{course.slug}/lessons/{lesson.slug}")
    assert page.status_code == 200
    assert_hardened(page, "lesson page")
    refused = browser_client.heartbeat(lesson.id, {"intervals": "nonsense"})
    assert refused.status_code == 400
    assert_hardened(refused, "refused heartbeat")


def test_no_template_carries_inline_script_handler_or_style():
    """Every template under lms/: no inline <script>, on…= handler, style attribute, <style> or
    javascript: URL — the policy would block them (scripts live in lms/static/js, values in data-*)."""
    found = {str(path.relative_to(LMS)): hits for path in sorted(LMS.rglob("*.html"))
             if (hits := inline_code(path.read_text(encoding="utf-8")))}
    assert not found, found


def test_rendered_learner_pages_carry_no_inline_code(app, course, browser_client, make_user):
    """The pages a learner sees, as rendered (lesson text from Markdown included), have nothing the policy blocks."""
    from lms.records.services import credit_course_completion

    user = make_user()
    browser_client.login(user.username)
    credit_course_completion(user.id, course)  # 我的学时 with a record and a filled meter
    lesson = course.active_lessons[0]
    found = {}
    for path in ("/", f"/courses/{course.slug}", f"/courses/{course.slug}/lessons/{lesson.slug}",
                 f"/lessons/{lesson.id}/quiz", "/my", "/my/hours", "/search?q=诈骗", "/help/elder"):
        response = browser_client.get(path)
        assert response.status_code == 200, path
        if hits := inline_code(response.get_data(as_text=True)):
            found[path] = hits
    assert not found, found


@pytest.fixture
def site_with(tmp_path, media_dir):
    """Build an app with extra configuration (as the environment would give it)."""
    apps = []

    def make(name, **config):
        folder = tmp_path / name
        folder.mkdir()
        app = _make_app(folder, data_dir=media_dir, **config)
        apps.append(app)
        return app

    yield make
    for app in apps:
        with app.app_context():
            db.engine.dispose()


def session_cookie(response) -> str:
    return next(c for c in response.headers.getlist("Set-Cookie") if c.startswith("session="))


COOKIE_CASES = (
    ("plain", {}, False),                                             # development on http://127.0.0.1:8000
    ("behind-proxy", {"TRUSTED_PROXIES": 1}, True),                   # the documented nginx, which ends TLS
    ("https-urls", {"PREFERRED_URL_SCHEME": "https"}, True),
    ("forced-off", {"TRUSTED_PROXIES": 1, "SECURE_COOKIES": False}, False),  # LMS_SECURE_COOKIES=0: plain-http proxy
    ("forced-on", {"SECURE_COOKIES": True}, True),                    # LMS_SECURE_COOKIES=1: gunicorn serving TLS
)


def test_session_cookie_is_httponly_lax_and_secure_over_https(site_with):
    """The session cookie (it carries the sign-in) is HttpOnly and SameSite=Lax, and Secure whenever
    the site is served over HTTPS, so a network attacker cannot read it from a plain-http request."""
    for name, config, secure in COOKIE_CASES:
        app = site_with(name, **config)
        cookie = session_cookie(app.test_client().get("/login"))
        flags = {part.strip().split("=")[0].lower(): part.strip() for part in cookie.split(";")}
        assert "httponly" in flags and flags["samesite"] == "SameSite=Lax", name
        assert ("secure" in flags) is secure, name
        assert app.config["REMEMBER_COOKIE_SECURE"] is secure and app.config["REMEMBER_COOKIE_HTTPONLY"], name


def test_forwarded_headers_count_only_from_declared_proxies(site_with):
    """A client sending X-Forwarded-For/-Proto cannot change request.remote_addr or claim HTTPS unless
    LMS_TRUSTED_PROXIES declares a proxy; with it (nginx), the visitor's address and scheme are used."""
    forged = {"X-Forwarded-For": "198.51.100.7", "X-Forwarded-Proto": "https"}
    seen = {}
    for name, config in (("direct", {}), ("proxied", {"TRUSTED_PROXIES": 1})):
        app = site_with(name, **config)

        @app.get("/_probe")
        def probe():
            from flask import request

            return {"remote_addr": request.remote_addr, "scheme": request.scheme}

        seen[name] = app.test_client().get("/_probe", headers=forged).get_json()
    assert seen["direct"] == {"remote_addr": "127.0.0.1", "scheme": "http"}
    assert seen["proxied"] == {"remote_addr": "198.51.100.7", "scheme": "https"}


@pytest.mark.parametrize("variable,value", [("LMS_TRUSTED_PROXIES", "nginx"), ("LMS_TRUSTED_PROXIES", "-1"),
                                            ("LMS_SECURE_COOKIES", "maybe")])
def test_a_mistyped_setting_stops_start_up_naming_it(monkeypatch, tmp_path, variable, value):
    """LMS_TRUSTED_PROXIES=nginx or LMS_SECURE_COOKIES=maybe: start-up fails with a message naming the
    variable, rather than silently trusting forged headers or sending cookies in the clear."""
    monkeypatch.setenv("LMS_INSTANCE_DIR", str(tmp_path))
    monkeypatch.setenv(variable, value)
    with pytest.raises(ValueError, match=variable):
        Config(SECRET_KEY="x")


# --- in a real browser, with the policy on --------------------------------------------------------

@pytest.mark.browser
def test_main_pages_run_under_the_policy_without_violations(site, browser):
    """Catalogue, course, lesson (video playing, heartbeats), quiz, my tasks, my hours, search, 长辈版
    switch, tablet roster and PIN keypad: the CSP header is on and Chromium's console shows no
    violation. An injected inline script is refused and reported, so the check is not vacuous."""
    from playwright.sync_api import expect

    base, violations = site["url"], browser.csp_violations
    context = browser.new_context(locale="zh-CN", viewport=VIEWPORTS["1024x768"])
    page = context.new_page()
    page.set_default_timeout(15_000)

    # the check works: an inline script is refused and lands in the list
    response = page.goto(f"{base}/login")
    assert response.headers["content-security-policy"] == EXPECTED_CSP
    page.evaluate("() => { const s = document.createElement('script'); s.textContent = 'window.__ran = 1';"
                  " document.body.append(s); }")
    assert page.evaluate("window.__ran") is None
    page.wait_for_timeout(200)
    assert violations and "script-src" in violations[-1]
    violations.clear()

    with page.expect_navigation():
        page.locator("#elder-switch").click()  # 长辈版 for an anonymous visitor
    sign_in(page, base, "elder")
    course_url = f"{base}/courses/{site['slug']}"
    for url in (f"{base}/", course_url, f"{base}/my", f"{base}/my/hours", f"{base}/search?q=诈骗",
                f"{base}/lessons/{site['lesson_id']}/quiz"):
        response = page.goto(url)
        assert response.ok and response.headers["content-security-policy"] == EXPECTED_CSP, url
        page.wait_for_load_state("networkidle")

    page.goto(f"{course_url}/lessons/{site['lesson_slug']}")
    with page.expect_response(lambda r: r.url.endswith("/heartbeat")):
        page.evaluate("() => { const v = document.getElementById('lesson-video'); v.muted = true; return v.play(); }")
        page.wait_for_timeout(1500)
        page.evaluate("document.getElementById('lesson-video').pause()")
    expect(page.locator("#watch-meter")).not_to_have_attribute("value", "0")
    context.close()

    context = browser.new_context(locale="zh-CN", viewport=VIEWPORTS["1024x768"])
    page = open_tablet(context, base)
    page.get_by_role("link", name="李奶奶").click()
    type_pin(page, "5678")
    expect(page.locator("#switch-person")).to_contain_text("李奶奶")
    context.close()
    assert not violations, violations
