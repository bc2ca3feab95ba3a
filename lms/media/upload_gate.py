"""Request bodies are judged before they are read.

Flask-WTF's CSRF check (an app-level before_request) reads the form, and with it every file part,
before a view's sign-in and role checks run. So a request to an upload endpoint is judged first, by
`judge_request`, which create_app puts ahead of every other hook: an endpoint registered with `guard`
reads its body only for a signed-in user its check accepts, and up to the limit the check returns.
Every other request body is capped at MAX_BODY_BYTES; JSON APIs register `json_body`, a small limit;
forms without files are held to MAX_FORM_MEMORY_SIZE and MAX_FORM_PARTS (FormParser).

File parts of an authorised video upload stream straight to a named file in the uploads folder, so a
2 GB video is neither held in memory nor copied again; whatever the view did not claim (by renaming it)
is removed when the request ends, whatever happened: refused by CSRF or validation, too large,
client gone, an exception. Files left by a process killed mid-request are swept by a periodic job
(lms.jobs.sweep_stray_uploads).
"""
from __future__ import annotations

import io
import tempfile
from collections.abc import Callable
from pathlib import Path

from flask import Request, current_app, request
from flask_login import current_user
from werkzeug.exceptions import Forbidden, RequestEntityTooLarge
from werkzeug.formparser import FormDataParser

UPLOAD_TEMP_PREFIX = ".tmp-upload-"
BODY_METHODS = ("POST", "PUT", "PATCH", "DELETE")

_checks: dict[str, Callable[..., int]] = {}  # endpoint -> check(**view_args) returning the byte limit
_to_disk: set[str] = set()  # endpoints whose file parts go to the uploads folder


def guard(endpoint: str, files_to_disk: bool = False):
    """Register `check(**view_args)` for requests with a body to `endpoint`. It runs before the body is
    read and returns the largest body allowed, or aborts (403/404). Sign-in is checked before it."""

    def register(check):
        _checks[endpoint] = check
        if files_to_disk:
            _to_disk.add(endpoint)
        return check

    return register


def json_body(**_view_args) -> int:
    """The check for a JSON API (a heartbeat, a setting): signed-in users, MAX_JSON_BYTES at most, so a
    10 MB body is refused (413) on its Content-Length, before a byte of it is read."""
    return current_app.config["MAX_JSON_BYTES"]


def judge_request():
    if request.method not in BODY_METHODS or request.endpoint not in _checks:
        return None
    if not current_user.is_authenticated:
        return current_app.login_manager.unauthorized()
    request.max_content_length = _checks[request.endpoint](**(request.view_args or {}))
    request.upload_allowed = True
    return None


def init_app(app) -> None:
    app.request_class = UploadRequest
    app.before_request_funcs.setdefault(None, []).insert(0, judge_request)  # ahead of CSRF


class FormParser(FormDataParser):
    """Werkzeug applies MAX_FORM_MEMORY_SIZE and MAX_FORM_PARTS to multipart forms only; a URL-encoded
    form (what a browser sends by default) gets them here too: 413 on a declared length past the size
    limit before reading, or on too many fields before any is decoded."""

    def parse(self, stream, mimetype, content_length, options=None):
        if mimetype == "application/x-www-form-urlencoded" and self.max_form_memory_size is not None:
            limit = self.max_form_memory_size
            if content_length is not None and content_length > limit:
                raise RequestEntityTooLarge()
            body = stream.read(limit + 1)
            if len(body) > limit or (self.max_form_parts is not None and body.count(b"&") >= self.max_form_parts):
                raise RequestEntityTooLarge()
            stream, content_length = io.BytesIO(body), len(body)
        return super().parse(stream, mimetype, content_length, options)


class UploadRequest(Request):
    upload_allowed = False  # set by judge_request
    form_data_parser_class = FormParser

    @property
    def max_content_length(self) -> int | None:
        """The limit judge_request set for this request, else MAX_BODY_BYTES: the big upload limit
        applies only to a request judged allowed to upload."""
        if self._max_content_length is not None:
            return self._max_content_length
        return current_app.config["MAX_BODY_BYTES"] if current_app else None

    @max_content_length.setter
    def max_content_length(self, value: int | None) -> None:
        self._max_content_length = value

    def _get_file_stream(self, total_content_length, content_type, filename=None, content_length=None):
        if self.endpoint not in _to_disk:
            return super()._get_file_stream(total_content_length, content_type, filename, content_length)
        if not self.upload_allowed:  # something read the body before judge_request: refuse, write nothing
            raise Forbidden()
        from lms.media.services import uploads_root

        part = tempfile.NamedTemporaryFile(dir=uploads_root(), prefix=UPLOAD_TEMP_PREFIX, delete=False)
        self.__dict__.setdefault("_upload_parts", []).append(part)
        return part

    def close(self) -> None:
        try:
            super().close()
        finally:
            for part in self.__dict__.pop("_upload_parts", []):
                part.close()
                Path(part.name).unlink(missing_ok=True)  # claimed parts were renamed away


def saved_upload(storage) -> Path:
    """The file an UploadRequest wrote this part to; the view claims it by renaming it."""
    storage.stream.flush()
    storage.stream.close()
    return Path(storage.stream.name)
