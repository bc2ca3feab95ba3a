"""Serving media: Range requests (206) from Flask, or X-Accel-Redirect to nginx when configured."""
from pathlib import Path

from flask import Blueprint, Response, abort, current_app, send_file
from flask_login import login_required

bp = Blueprint("media", __name__)


@bp.get("/media/<path:relpath>")
@login_required
def serve(relpath):
    root = (Path(current_app.config["DATA_DIR"]) / "media").resolve()
    path = (root / relpath).resolve()
    if root not in path.parents or not path.is_file() or path.name.startswith(".tmp-"):
        abort(404)
    prefix = current_app.config.get("MEDIA_ACCEL_PREFIX")
    if prefix:
        response = Response(headers={"X-Accel-Redirect": prefix.rstrip("/") + "/" + relpath})
        response.headers["Content-Type"] = ""
        return response
    response = send_file(path, conditional=True, max_age=86400)
    response.headers["Accept-Ranges"] = "bytes"
    return response
