"""dashboard rollups kept up to date as records are written (issue 11)

ledger_user_year (per person and Asia/Shanghai year: 学时 and number of records) and ledger_course_year
(per course and year: people credited with it) — lms/records/rollups.py says why. Filled here from the
ledger so far, then kept by AFTER INSERT triggers on training_record (the ledger is append-only, so
inserts are all there is to follow). A later migration that REBUILDS training_record (a batch
"recreate" on SQLite) drops its triggers — the append-only ones of 0001 and these — and must recreate them.

Revision ID: 0018
Revises: 0017
"""
from datetime import date, datetime, time, timezone
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None

SHANGHAI = ZoneInfo("Asia/Shanghai")

# Shanghai has kept UTC+8 since 1992, so '+8 hours' gives the local year of every record (2000 on).
_SQLITE_YEAR = "CAST(strftime('%Y', {column}, '+8 hours') AS INTEGER)"
_SQLITE_TRIGGERS = [
    f"""CREATE TRIGGER training_record_rollup AFTER INSERT ON training_record
    BEGIN
      INSERT INTO ledger_user_year (user_id, year, hours, records)
        VALUES (NEW.user_id, {_SQLITE_YEAR.format(column='NEW.earned_at')}, NEW.hours, 1)
        ON CONFLICT (user_id, year) DO UPDATE SET hours = hours + excluded.hours, records = records + 1;
      INSERT INTO ledger_course_year (course_id, year, learners)
        SELECT NEW.course_id, {_SQLITE_YEAR.format(column='NEW.earned_at')}, 1
        WHERE NEW.kind = 'course' AND NEW.course_id IS NOT NULL AND NOT EXISTS (
          SELECT 1 FROM training_record r
          WHERE r.course_id = NEW.course_id AND r.kind = 'course' AND r.user_id = NEW.user_id AND r.id <> NEW.id
            AND {_SQLITE_YEAR.format(column='r.earned_at')} = {_SQLITE_YEAR.format(column='NEW.earned_at')})
        ON CONFLICT (course_id, year) DO UPDATE SET learners = learners + 1;
    END""",
]
_PG_YEAR = "CAST(extract(year FROM ({column} AT TIME ZONE 'UTC') AT TIME ZONE 'Asia/Shanghai') AS integer)"
_PG_TRIGGERS = [
    f"""CREATE OR REPLACE FUNCTION training_record_rollup() RETURNS trigger AS $$
    DECLARE
      local_year integer := {_PG_YEAR.format(column='NEW.earned_at')};
    BEGIN
      INSERT INTO ledger_user_year AS t (user_id, year, hours, records)
        VALUES (NEW.user_id, local_year, NEW.hours, 1)
        ON CONFLICT (user_id, year) DO UPDATE SET hours = t.hours + EXCLUDED.hours, records = t.records + 1;
      IF NEW.kind = 'course' AND NEW.course_id IS NOT NULL AND NOT EXISTS (
          SELECT 1 FROM training_record r
          WHERE r.course_id = NEW.course_id AND r.kind = 'course' AND r.user_id = NEW.user_id AND r.id <> NEW.id
            AND {_PG_YEAR.format(column='r.earned_at')} = local_year) THEN
        INSERT INTO ledger_course_year AS c (course_id, year, learners) VALUES (NEW.course_id, local_year, 1)
          ON CONFLICT (course_id, year) DO UPDATE SET learners = c.learners + 1;
      END IF;
      RETURN NULL;
    END; $$ LANGUAGE plpgsql""",
    """CREATE TRIGGER training_record_rollup AFTER INSERT ON training_record
       FOR EACH ROW EXECUTE FUNCTION training_record_rollup()""",
]


def _year_bounds_utc(year: int) -> tuple[datetime, datetime]:
    def start(day: date) -> datetime:
        return datetime.combine(day, time.min, tzinfo=SHANGHAI).astimezone(timezone.utc).replace(tzinfo=None)

    return start(date(year, 1, 1)), start(date(year + 1, 1, 1))


def upgrade():
    op.create_table(
        "ledger_user_year",
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("year", sa.Integer(), nullable=False),
        sa.Column("hours", sa.Numeric(precision=10, scale=2), nullable=False),
        sa.Column("records", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["user.id"], name=op.f("fk_ledger_user_year_user_id_user")),
        sa.PrimaryKeyConstraint("user_id", "year", name=op.f("pk_ledger_user_year")),
    )
    op.create_index("ix_ledger_user_year_year", "ledger_user_year", ["year", "user_id", "hours"], unique=False)
    op.create_table(
        "ledger_course_year",
        sa.Column("course_id", sa.Integer(), nullable=False),
        sa.Column("year", sa.Integer(), nullable=False),
        sa.Column("learners", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["course_id"], ["course.id"], name=op.f("fk_ledger_course_year_course_id_course")),
        sa.PrimaryKeyConstraint("course_id", "year", name=op.f("pk_ledger_course_year")),
    )

    # the ledger so far, one local year at a time (the same bounds the application uses)
    bind = op.get_bind()
    first, last = bind.execute(sa.text("SELECT min(earned_at), max(earned_at) FROM training_record")).one()
    if first is not None:
        if isinstance(first, str):  # SQLite hands back text
            first, last = datetime.fromisoformat(first), datetime.fromisoformat(last)
        typed = [sa.bindparam("start", type_=sa.DateTime()), sa.bindparam("end", type_=sa.DateTime())]
        local = [moment.replace(tzinfo=timezone.utc).astimezone(SHANGHAI).year for moment in (first, last)]
        for year in range(local[0], local[1] + 1):
            start, end = _year_bounds_utc(year)
            bounds = {"year": year, "start": start, "end": end}
            bind.execute(sa.text(
                "INSERT INTO ledger_user_year (user_id, year, hours, records) "
                "SELECT user_id, :year, sum(hours), count(*) FROM training_record "
                "WHERE earned_at >= :start AND earned_at < :end GROUP BY user_id").bindparams(*typed), bounds)
            bind.execute(sa.text(
                "INSERT INTO ledger_course_year (course_id, year, learners) "
                "SELECT course_id, :year, count(DISTINCT user_id) FROM training_record "
                "WHERE kind = 'course' AND course_id IS NOT NULL AND earned_at >= :start AND earned_at < :end "
                "GROUP BY course_id").bindparams(*typed), bounds)

    for statement in {"sqlite": _SQLITE_TRIGGERS, "postgresql": _PG_TRIGGERS}.get(bind.dialect.name, []):
        op.execute(statement)


def downgrade():
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        op.execute("DROP TRIGGER IF EXISTS training_record_rollup")
    elif dialect == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS training_record_rollup ON training_record")
        op.execute("DROP FUNCTION IF EXISTS training_record_rollup()")
    op.drop_table("ledger_course_year")
    op.drop_index("ix_ledger_user_year_year", table_name="ledger_user_year")
    op.drop_table("ledger_user_year")
