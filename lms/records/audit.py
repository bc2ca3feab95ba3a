"""The one way to write the audit log: `audit(actor, action, target, detail)`.

Every change to units, people, courses, quizzes, videos, assignments or records adds one row, in the
same transaction as the change (this function only adds to the session; the caller's commit writes
both, so a failed change leaves no row and a row never describes a change that did not happen).

- `actor`: the user who acted (a User, a user id, or None for the system / a command without one).
- `action`: "<domain>.<verb>", e.g. "unit.create", "user.password_reset", "course.publish" — the audit
  page filters by prefix ("unit." finds every unit change).
- `target`: what was changed, as "<kind>:<id>" — pass the object itself and the key is made here:
  user:<id>, unit:<id>, course:<id>, lesson:<id>, quiz:<id>, question:<id>, asset:<id> (a VideoAsset),
  record:<id> (a TrainingRecord), requirement:<id>. The audit page scopes rows for unit admins by
  `user:` and `unit:` targets (and by the actor), so use those kinds for people and units.
- `detail`: free text for a human (old → new values, a count, a reason).
"""
from __future__ import annotations

from lms.extensions import db
from lms.records.models import AuditLog

# table name → the kind used in `target` where the two differ (existing rows already use these)
TARGET_KINDS = {"video_asset": "asset", "training_record": "record"}


def target_key(target) -> str | None:
    """"<kind>:<id>" for a model object; a string (or None) is taken as it is."""
    if target is None or isinstance(target, str):
        return target
    if target.id is None:
        db.session.flush()  # a new object gets its id, still inside the caller's transaction
    table = target.__tablename__
    return f"{TARGET_KINDS.get(table, table)}:{target.id}"


def audit(actor, action: str, target=None, detail: str | None = None) -> AuditLog:
    """Add one audit row for a change about to be committed by the caller."""
    actor_id = actor if isinstance(actor, int) or actor is None else getattr(actor, "id", None)
    row = AuditLog(actor_id=actor_id, action=action, target=target_key(target),
                   detail=None if detail is None else str(detail))
    db.session.add(row)
    return row
