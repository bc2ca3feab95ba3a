"""A gunicorn worker gives freed memory back (issue 12: each web worker ≤ 120 MB USS; lms/memory.py):
malloc's free pages when it falls idle having grown, and a certificate's fpdf2/fontTools objects as soon
as it is drawn."""
from __future__ import annotations

import gc
import importlib.util
import subprocess
import sys
import weakref
from pathlib import Path

import pytest

from lms import memory, preload
from lms.records import certificates
from tests.ledger import add_record, signed_in

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def trims(monkeypatch):
    """The trims asked for; resident memory as the test sets it."""
    asked, resident = [], {"mb": 100.0}
    monkeypatch.setattr(memory, "trim", lambda: asked.append(resident["mb"]) or True)
    monkeypatch.setattr(memory, "resident_mb", lambda: resident["mb"])
    return asked, resident


def test_an_idle_worker_that_grew_trims_once_and_a_busy_or_steady_one_does_not(trims):
    asked, resident = trims
    idle = memory.IdleTrim(growth_mb=4)
    idle.started()
    idle.started()
    resident["mb"] = 130
    idle.finished()
    assert asked == []  # another request is still in progress
    idle.finished()
    assert asked == [130] and idle.trims == 1
    resident["mb"] = 110  # what the trim gave back
    idle.started()
    resident["mb"] = 112
    idle.finished()
    assert asked == [130]  # grew by less than 4 MB since the last trim


def test_gunicorn_hooks_count_requests_for_the_workers_trim(trims, monkeypatch):
    asked, resident = trims
    spec = importlib.util.spec_from_file_location("gunicorn_conf", ROOT / "gunicorn.conf.py")
    conf = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(conf)
    monkeypatch.setattr(preload, "idle_trim", memory.IdleTrim(growth_mb=4))

    class Worker:
        class log:
            debug = staticmethod(lambda *args: None)

    class Request:
        method, path = "GET", "/"

    conf.pre_request(Worker, Request)
    assert preload.idle_trim.in_progress == 1
    resident["mb"] = 150
    conf.post_request(Worker, Request, {}, None)
    assert preload.idle_trim.in_progress == 0 and asked == [150]


def test_malloc_trim_gives_freed_heap_back_to_the_system():
    # blocks under glibc's mmap threshold (128 KiB at least) come from the heap; the last one kept stops
    # glibc trimming the top by itself
    program = (
        "from lms import memory\n"
        "blocks = [bytes(100_000) for _ in range(1000)]\n"
        "keep = blocks[-1]\n"
        "del blocks\n"
        "before = memory.resident_mb()\n"
        "assert memory.trim()\n"
        "print(before - memory.resident_mb())\n"
    )
    out = subprocess.run([sys.executable, "-c", program], cwd=ROOT, capture_output=True, text=True, check=True)
    assert float(out.stdout) > 50  # of the ~100 MB freed


def test_a_drawing_does_not_outlive_the_certificate():
    class Drawing:  # refers to itself, as fpdf2's and fontTools' objects do
        def __init__(self):
            self.me = self

    drawings = []

    @certificates._one_at_a_time
    def draw():
        drawing = Drawing()
        drawings.append(weakref.ref(drawing))
        return b"%PDF-"

    gc.disable()  # no automatic pass could be what freed it
    try:
        assert draw() == b"%PDF-"
        assert drawings[0]() is None
    finally:
        gc.enable()


def test_no_fpdf_document_is_left_after_a_certificate_download(app, make_user):
    from fpdf import FPDF  # imported first, as gunicorn's master does (fpdf.encryption keeps its import's frames)

    def documents():
        return sum(isinstance(o, FPDF) for o in gc.get_objects())

    learner = make_user("li.si", full_name="李四", audience="cadre", unit="town-a")
    record = add_record(learner)
    client = signed_in(app, learner)
    gc.disable()
    try:
        before = documents()
        response = client.get(f"/certificates/record/{record.id}.pdf")
        assert response.status_code == 200 and response.data.startswith(b"%PDF-")
        assert documents() == before
    finally:
        gc.enable()
