"""Debian's nginx, configured exactly as docs/deploy.md shows, in front of gunicorn on loopback ports.

The site configuration is read from docs/deploy.md itself (its first ```nginx block), so the tests
and the guide cannot drift apart; only the ports, the certificate and the folders are swapped for
test ones, and each swap must match once. Videos are made by the real import pipeline under the
documented `UMask=0027`, into a data folder laid out as the guide says (media/ set-group-ID, group
www-data). Run as root (as scripts/test does), nginx's workers run as www-data, as on a server, so a
file nginx cannot read answers 403 here too. Used by tests/test_nginx.py and
tests/security/test_nginx_media.py.
"""
from __future__ import annotations

import contextlib
import grp
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from tests.conftest import CSRF_RE, _make_app, write_package

PROJECT = Path(__file__).resolve().parent.parent
DEPLOY_DOC = PROJECT / "docs" / "deploy.md"
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
WEB_USER = "www-data"  # Debian's nginx user (docs/deploy.md "Users and folders")
DOCUMENTED_UMASK = 0o027  # the systemd units' UMask=
ACCEL_PREFIX = "/_protected_media"


def documented_site() -> str:
    """The nginx site configuration docs/deploy.md shows (the first ```nginx block after its marker)."""
    text = DEPLOY_DOC.read_text(encoding="utf-8")
    marker = text.index("tests/test_nginx.py reads the first nginx block below")
    match = re.search(r"```nginx\n(.*?)```", text[marker:], re.S)
    assert match, "docs/deploy.md has lost its nginx configuration block"
    return match.group(1)


def for_test(site: str, **swaps: str) -> str:
    """The documented site with its ports, certificate and folders swapped; each must occur once."""
    for old, new in swaps.values():
        assert site.count(old) == 1, f"docs/deploy.md's nginx block no longer has {old!r} once: update this test"
        site = site.replace(old, new)
    return site


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(check, what: str, process: subprocess.Popen, log: Path, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"{what} exited with {process.returncode}:\n{log.read_text(errors='replace')[-3000:]}")
        try:
            if check():
                return
        except OSError:
            pass
        time.sleep(0.2)
    pytest.fail(f"{what} did not start in {timeout:.0f} s:\n{log.read_text(errors='replace')[-3000:]}")


def port_open(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


@contextlib.contextmanager
def running_site(test_video: Path):
    """Data folder, database, a published and a draft course's videos as deployed; gunicorn and nginx on
    loopback ports. Yields what the tests need (URLs, the certificate, media paths); stops both after."""
    if not os.path.exists(NGINX):
        pytest.skip("nginx is not installed (Debian's nginx package; scripts/test installs it as root)")
    if shutil.which("openssl") is None:
        pytest.skip("openssl is needed to make the test certificate")
    import requests

    from lms.accounts.services import create_user, get_or_create_unit
    from lms.courses.importer import import_package
    from lms.extensions import db

    as_root = os.geteuid() == 0
    web_gid = grp.getgrnam(WEB_USER).gr_gid if as_root else os.getegid()
    # Not under pytest's basetemp (0700): nginx's workers must pass through, as through /srv/kepu.
    base = Path(tempfile.mkdtemp(prefix="kepu-nginx-"))
    base.chmod(0o755)
    data, run = base / "data", base / "run"
    (data / "media").mkdir(parents=True)
    run.mkdir()
    for folder in (data, data / "media"):
        os.chown(folder, -1, web_gid)
    data.chmod(0o710)
    (data / "media").chmod(0o2750)
    processes: list[subprocess.Popen] = []
    try:
        app = _make_app(base, data_dir=data, MEDIA_ACCEL_PREFIX=ACCEL_PREFIX)
        with app.app_context():
            draft_clip = base / "draft.mp4"  # another clip: media is content-addressed
            subprocess.run(["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25:duration=1",
                            "-c:v", "libx264", "-pix_fmt", "yuv420p", "-y", str(draft_clip)], check=True)
            old_umask = os.umask(DOCUMENTED_UMASK)
            try:
                course, _ = import_package(write_package(base / "content", test_video, slug="nginx-course"))
                draft, _ = import_package(write_package(base / "content", draft_clip, slug="draft-course",
                                                        published=False))
            finally:
                os.umask(old_umask)
            get_or_create_unit("town-a", "桂溪街道", "township", get_or_create_unit("county", "垫江县", "county"))
            create_user("viewer", "观看者", "correct-horse", "learner", "elder", "town-a")
            db.session.commit()
            asset = course.lessons[0].video
            media = {"video": asset.renditions["360p"], "poster": asset.poster_path, "captions": asset.captions_path,
                     "draft_video": draft.lessons[0].video.renditions["360p"]}
            db.session.remove()
            db.engine.dispose()

        cert, key = run / "cert.pem", run / "key.pem"
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                        "-nodes", "-days", "2", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                        "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)

        app_port, http_port, https_port = free_port(), free_port(), free_port()
        env = {**os.environ, "LMS_DATABASE_URL": f"sqlite:///{base / 'lms.sqlite3'}", "LMS_DATA_DIR": str(data),
               "LMS_INSTANCE_DIR": str(base / "instance"), "LMS_SECRET_KEY": "nginx-test-secret",
               "LMS_MEDIA_ACCEL_PREFIX": ACCEL_PREFIX, "LMS_TRUSTED_PROXIES": "1"}
        env.pop("LMS_REDIS_URL", None)
        gunicorn_log = run / "gunicorn.log"
        with open(gunicorn_log, "wb") as out:
            processes.append(subprocess.Popen(
                [sys.executable, "-m", "gunicorn", "--workers", "1", "--threads", "4",
                 "--bind", f"127.0.0.1:{app_port}", "wsgi:app"],
                cwd=PROJECT, env=env, stdout=out, stderr=subprocess.STDOUT))
        wait_for(lambda: requests.get(f"http://127.0.0.1:{app_port}/healthz", timeout=2).status_code in (200, 503),
                 "gunicorn", processes[-1], gunicorn_log)

        site_conf = for_test(
            documented_site(),
            http=("listen 80;", f"listen 127.0.0.1:{http_port};"),
            https=("listen 443 ssl http2;", f"listen 127.0.0.1:{https_port} ssl http2;"),
            upstream=("server 127.0.0.1:8000;", f"server 127.0.0.1:{app_port};"),
            cert=("/etc/letsencrypt/live/kepu.example.cn/fullchain.pem", str(cert)),
            key=("/etc/letsencrypt/live/kepu.example.cn/privkey.pem", str(key)),
            media=("/srv/kepu/data/media/", f"{data}/media/"),
            static=("/srv/kepu/app/lms/static/", f"{PROJECT}/lms/static/"),
            # $host drops the port, right on 443; here the port is another, and CSRF's same-origin
            # check on https compares the Referer's port with the Host the app is given
            host=("proxy_set_header Host $host;", "proxy_set_header Host $http_host;"),
        )
        # What Debian's /etc/nginx/nginx.conf provides around sites-enabled/, with files under `run`.
        temp_paths = "\n".join(f"    {kind}_temp_path {run}/{kind};" for kind in
                               ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
        (run / "nginx.conf").write_text(f"""
{"user " + WEB_USER + ";" if as_root else ""}
worker_processes 1;
daemon off;
pid {run}/nginx.pid;
error_log {run}/error.log;
events {{ worker_connections 64; }}
http {{
    include /etc/nginx/mime.types;
    default_type application/octet-stream;
    sendfile on;
    access_log {run}/access.log;
{temp_paths}
{site_conf}
}}
""")
        nginx_log = run / "error.log"
        nginx_log.touch()
        processes.append(subprocess.Popen([NGINX, "-p", str(run), "-c", str(run / "nginx.conf"), "-e", str(nginx_log)],
                                          stdout=subprocess.DEVNULL, stderr=open(nginx_log, "ab")))
        wait_for(lambda: port_open(https_port), "nginx", processes[-1], nginx_log)
        yield {"url": f"https://127.0.0.1:{https_port}", "http_url": f"http://127.0.0.1:{http_port}",
               "cert": str(cert), "data": data, "media": media, "web_gid": web_gid, "as_root": as_root,
               "app": app, "nginx_log": nginx_log}
    finally:
        for process in reversed(processes):
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        shutil.rmtree(base, ignore_errors=True)


def session(site):
    import requests

    s = requests.Session()
    s.trust_env = False  # no proxy, and no CA bundle from the environment overriding `verify`
    s.verify = site["cert"]
    return s


def signed_in(site):
    s = session(site)
    page = s.get(site["url"] + "/login").text
    response = s.post(site["url"] + "/login", allow_redirects=False, headers={"Referer": site["url"] + "/login"},
                      data={"username": "viewer", "password": "correct-horse",
                            "csrf_token": CSRF_RE.search(page).group(1)})
    assert response.status_code == 302, response.text[:500]
    assert "secure" in response.headers["Set-Cookie"].lower()  # TLS at nginx, LMS_TRUSTED_PROXIES=1
    return s


