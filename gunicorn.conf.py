"""gunicorn settings for 科普学堂: `gunicorn -c gunicorn.conf.py --bind 127.0.0.1:8000 wsgi:app`
(scripts/run does this). Options given on the command line override these.

Workers: WEB_CONCURRENCY when set, else min(2 × cores + 1, what memory allows), at least 2 — the rule
docs/deploy.md explains. Each worker runs 4 threads (gthread).

In production nginx stands in front (docs/deploy.md): it reads each request's head and body from the
client before passing it on, so a client that connects and sends nothing, or sends slowly, holds no
gunicorn thread. Without nginx, idle connections are handled below (tests/security/test_floods.py);
a client trickling a request head holds a thread until it finishes or leaves.
"""
import os

from gunicorn.workers import gthread

MEMORY_RESERVE_MB = 1024  # the system, nginx, `lms worker` and one ffmpeg transcode
MEMORY_PER_WORKER_MB = 150  # ~80 MB USS measured by scripts/bench/memory.py, plus a certificate being drawn (~45 MB); measure yours (docs/deploy.md)


def _memory_mb() -> int | None:
    try:
        with open("/proc/meminfo") as meminfo:
            for line in meminfo:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) // 1024
    except OSError:
        pass
    return None


def _default_workers() -> int:
    by_cores = 2 * (os.cpu_count() or 1) + 1
    memory = _memory_mb()
    by_memory = (memory - MEMORY_RESERVE_MB) // MEMORY_PER_WORKER_MB if memory else by_cores
    return max(2, min(by_cores, by_memory))


workers = int(os.environ.get("WEB_CONCURRENCY") or _default_workers())
# the master loads the app (and jieba, fpdf2: lms/preload.py) once; workers share those pages, copy-on-write
preload_app = True
# gunicorn's gthread worker, accepting a new connection only while among the least busy (lms/web_worker.py)
worker_class = "lms.web_worker.FairThreadWorker"
threads = 4
# gthread workers tell the arbiter they are alive between requests, so this catches a stuck worker,
# not a slow request (requests run in threads)
timeout = 30
# a restart or stop lets requests in progress finish this long; under systemd's TimeoutStopSec=30
graceful_timeout = 25
# an idle kept-alive connection, or a new one that has sent nothing yet, is closed after this long
keepalive = 5
# the request head: gunicorn's defaults, stated (a longer line: 414; more or longer headers: 400)
limit_request_line = 4094
limit_request_fields = 100
limit_request_field_size = 8190

# gunicorn 27 (installed here) lets a pool thread wait up to 5 s for a new connection's first bytes before parking
# it in the poller: 50 connections that send nothing then hold 2 workers × 4 threads for ~30 s, and
# every real request queues behind them (measured). Real clients send at once, so park them sooner.
if hasattr(gthread, "DEFAULT_WORKER_DATA_TIMEOUT"):
    gthread.DEFAULT_WORKER_DATA_TIMEOUT = 0.2


def _flask_app(server):
    app = server.app.wsgi()
    return app if hasattr(app, "app_context") else None


def when_ready(server):
    from lms import preload

    if server.cfg.preload_app and _flask_app(server):
        preload.warm(_flask_app(server))


def pre_fork(server, worker):
    from lms import preload

    preload.before_fork()


def post_fork(server, worker):
    from lms import preload
    from lms.accounts import passwords

    # the workers share the cores: a worker's 4 threads hash cores ÷ workers passwords at a time (at least
    # one), the rest wait, and a sign-in day's page loads and redirects are not starved (lms/accounts/passwords.py)
    passwords.limit_concurrent_hashing((os.cpu_count() or 1) // server.cfg.workers)
    if server.cfg.preload_app and _flask_app(server):
        preload.after_fork(_flask_app(server))


# a worker that falls idle having grown gives malloc's free pages back (lms/preload.py, lms/memory.py)
def pre_request(worker, req):
    from lms import preload

    worker.log.debug("%s %s", req.method, req.path)  # gunicorn's own pre_request
    preload.request_started()


def post_request(worker, req, environ, resp):
    from lms import preload

    preload.request_finished()
