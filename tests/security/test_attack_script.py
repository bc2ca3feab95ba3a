"""scripts/attack.py, the issue-9 attacks against a live gunicorn: it explains itself, refuses to aim
anywhere but loopback, and its instance builder and an attack work end to end over HTTP (here the
Flask server, to stay quick; a whole run of the script uses gunicorn)."""
from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

from lms.extensions import db
from tests.conftest import serve_app

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "attack.py"


def attack(*args, timeout=30) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=timeout)


def test_help_names_every_attack():
    """`attack.py --help`: exit 0, the usage names --url, --only and every attack group."""
    result = attack("--help")
    assert result.returncode == 0, result.stderr
    for word in ("--url", "--only", "--time-limit", "uploads", "quiz", "heartbeats", "signin", "packages", "reading"):
        assert word in result.stdout, word


@pytest.mark.parametrize("url", ["http://10.0.0.1:8000", "http://localhost:8000", "https://127.0.0.1",
                                 "http://[::1]:8000", "http://203.0.113.9"])
def test_a_url_that_is_not_loopback_is_refused_before_anything_runs(url):
    """`--url` naming another machine, a host name, https or IPv6: exit non-zero with "loopback only", nothing built."""
    result = attack("--url", url)
    assert result.returncode != 0
    assert "loopback only" in result.stderr and "instance built" not in result.stdout


def load_script():
    spec = importlib.util.spec_from_file_location("attack_script", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_fixture_builder_and_the_upload_attack_against_a_served_instance(tmp_path, monkeypatch, capsys):
    """The script's instance (built by its own builder) served over loopback HTTP: the anonymous, learner
    and non-author 20 MB uploads are each refused with nothing written (3 PASS lines)."""
    script = load_script()
    for name in ("LMS_INSTANCE_DIR", "LMS_DATA_DIR", "LMS_DATABASE_URL", "LMS_SECRET_KEY"):
        monkeypatch.delenv(name, raising=False)  # the builder sets them; put them back afterwards
    instance = script.create_instance(tmp_path)
    script.populate(instance)
    with instance.app.app_context(), serve_app(instance.app) as base:
        run = script.Run(instance, base)
        run.uploads()
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith(("PASS", "FAIL"))]
    assert run.results == [True] * 3, lines
    assert all(line.startswith("PASS  [1]") and "uploads/ 0 → 0 files" in line for line in lines), lines
    with instance.app.app_context():
        db.engine.dispose()
