"""Certificate downloads (signed in: one's own, or an overseer's for people in their subtree) and the PUBLIC
verification page /verify/<code> (lms/records/certificates.py). Someone else's certificate answers 404,
as if it did not exist; /verify shows a masked name and never the 账号."""
from __future__ import annotations

from flask import Blueprint, Response, abort, render_template
from flask_login import current_user, login_required

from lms.accounts.models import User, utcnow
from lms.extensions import db
from lms.records import certificates
from lms.records.models import TrainingRecord
from lms.records.services import FIRST_RECORD_YEAR, to_local

bp = Blueprint("certificates", __name__)


def _pdf(data: bytes, filename: str) -> Response:
    return Response(data, mimetype="application/pdf", headers={
        "Content-Disposition": f'attachment; filename="{filename}"', "Cache-Control": "private, no-store"})


def _not_available(exc: certificates.NoCertificate):
    return render_template("error.html", code=404, message=exc.message), 404


@bp.get("/certificates/record/<int:record_id>.pdf")
@login_required
def course(record_id):
    record = db.session.get(TrainingRecord, record_id)
    if record is None or not certificates.may_download(current_user, record.user):
        abort(404)
    try:
        data = certificates.course_pdf(record)
    except certificates.NoCertificate as exc:
        return _not_available(exc)
    return _pdf(data, f"certificate-{record.certificate_no}.pdf")


@bp.get("/certificates/people/<int:user_id>/<int:year>.pdf")
@login_required
def year(user_id, year):
    person = db.session.get(User, user_id)
    if person is None or not certificates.may_download(current_user, person):
        abort(404)
    if not FIRST_RECORD_YEAR <= year <= to_local(utcnow()).year:
        abort(404)
    try:
        certificate, data = certificates.year_pdf(person, year)
    except certificates.NoCertificate as exc:
        return _not_available(exc)
    return _pdf(data, f"xueshi-{certificate.code}.pdf")


@bp.get("/verify/<path:code>")  # a "/" in it is malformed (400), not another page
def verify(code):
    """Public: anyone holding a certificate's code (or its QR code) checks it stands."""
    headers = {"X-Robots-Tag": "noindex", "Cache-Control": "no-store"}
    try:
        found = certificates.verify(code)
    except certificates.MalformedCode:
        return render_template("records/verify.html", malformed=True, found=None), 400, headers
    if found is None:
        return render_template("records/verify.html", malformed=False, found=None), 404, headers
    return render_template("records/verify.html", malformed=False, found=found,
                           code=certificates.normalise_code(code)), 200, headers
