"""The role check every console view makes: signed in, and one of the roles named (else 403).

Scope — which units, people or courses within that role — is each view's own check, through
lms/accounts/scope.py (units and people) or lms/courses/authors.py (courses)."""
from __future__ import annotations

from functools import wraps

from flask import abort
from flask_login import current_user, login_required


def roles_required(*roles: str):
    def decorator(view):
        @wraps(view)
        @login_required
        def wrapped(*args, **kwargs):
            if current_user.role not in roles:
                abort(403)
            return view(*args, **kwargs)

        return wrapped

    return decorator


def upload_for_roles(max_bytes: int, *roles: str):
    """A check for lms/media/upload_gate.py's `guard(endpoint)`: the body of a file upload (a spreadsheet to
    import, say) is read only from a user of one of `roles` (else 403, before reading) and up to `max_bytes`."""

    def check(**_view_args) -> int:
        if current_user.role not in roles:
            abort(403)
        return max_bytes

    return check
