"""The HTTP edge: which proxy headers to believe, cookie flags, and the security headers on every response.

- X-Forwarded-For/-Proto are honoured only from the number of proxies declared in
  LMS_TRUSTED_PROXIES (werkzeug's ProxyFix); otherwise a client could forge its address (which the
  sign-in throttle and /healthz rely on) or claim HTTPS.
- Session and remember cookies are HttpOnly and SameSite=Lax, and Secure when the site is served
  over HTTPS: LMS_SECURE_COOKIES=1/0, by default on behind trusted proxies (the documented nginx
  ends TLS) or when PREFERRED_URL_SCHEME is https.
- A Content-Security-Policy without inline script or style: pages load their scripts from
  lms/static/js and pass per-page values in data-* attributes.
"""
from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix

CONTENT_SECURITY_POLICY = "; ".join((
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self' data:",
    "media-src 'self' blob:",
    "object-src 'none'",
    "base-uri 'self'",
    "form-action 'self'",
    "frame-ancestors 'none'",
))

SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",  # frame-ancestors for browsers that predate it
}


def init_app(app: Flask) -> None:
    """Call last in the app factory, so ProxyFix wraps every other WSGI layer."""
    proxies = app.config["TRUSTED_PROXIES"]
    if proxies:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=proxies, x_proto=proxies)
    secure = app.config["SECURE_COOKIES"]
    if secure is None:
        secure = bool(proxies) or app.config["PREFERRED_URL_SCHEME"] == "https"
    app.config.update(
        SESSION_COOKIE_SECURE=secure,
        REMEMBER_COOKIE_SECURE=secure,
        REMEMBER_COOKIE_HTTPONLY=True,
        REMEMBER_COOKIE_SAMESITE="Lax",
    )
    app.after_request(add_security_headers)


def add_security_headers(response):
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    return response
