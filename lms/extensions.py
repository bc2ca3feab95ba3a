"""Flask extensions, created once and bound in the app factory."""
import click
from flask_babel import Babel
from flask_login import LoginManager
from flask_sqlalchemy import SQLAlchemy
from flask_wtf.csrf import CSRFProtect
from sqlalchemy import MetaData

# Named constraints so Alembic batch mode on SQLite can alter them.
naming_convention = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class LazyMigrate:
    """Flask-Migrate, imported (with alembic and mako under it: ~0.15 s of start-up, issue 12) only when
    something migrates or reads the migrations: `lms db …`, flask_migrate.upgrade() and the others,
    `lms doctor`, the migrations' env.py. Until then app.extensions["migrate"] holds the settings
    (_PendingMigrate) and `db` is a command group that loads Flask-Migrate's when it is run or listed."""

    def __init__(self):
        self.real = None  # the one flask_migrate.Migrate, made on first use

    def init_app(self, app, db, directory: str, **settings) -> None:
        app.extensions["migrate"] = _PendingMigrate(self, app, db, directory, settings)
        app.cli.add_command(_MigrationCommands("db", help="Perform database migrations."))

    def materialize(self, app, db, directory: str, settings: dict):
        """Flask-Migrate's own set-up for `app` (it replaces app.extensions["migrate"] and the `db` group)."""
        from flask_migrate import Migrate

        if self.real is None:
            self.real = Migrate()
        self.real.init_app(app, db, directory=directory, **settings)
        return app.extensions["migrate"]


class _PendingMigrate:
    """app.extensions["migrate"] until Flask-Migrate is needed: the first attribute read (`.migrate`,
    `.db`, `.configure_args`, `.directory` — all that flask_migrate and env.py read) sets it up."""

    def __init__(self, owner, app, db, directory, settings):
        self._args, self._real = (owner, app, db, directory, settings), None

    def __getattr__(self, name):
        if name.startswith("__") or name in ("_args", "_real"):  # protocols (copy, pickle), or not set yet
            raise AttributeError(name)
        if self._real is None:  # once: a caller holding this object keeps reading the same set-up
            owner, app, db, directory, settings = self._args
            self._real = owner.materialize(app, db, directory, settings)
        return getattr(self._real, name)


class _MigrationCommands(click.Group):
    """`lms db …`: flask_migrate.cli's group, imported when a `db` command is run, listed or completed."""

    @staticmethod
    def _real() -> click.Group:
        from flask_migrate.cli import db as group

        return group

    def make_context(self, info_name, args, parent=None, **extra):
        return self._real().make_context(info_name, args, parent=parent, **extra)

    def list_commands(self, ctx):
        return self._real().list_commands(ctx)

    def get_command(self, ctx, cmd_name):
        return self._real().get_command(ctx, cmd_name)


db = SQLAlchemy(metadata=MetaData(naming_convention=naming_convention))
migrate = LazyMigrate()
login_manager = LoginManager()
csrf = CSRFProtect()
babel = Babel()


def add_once(row, existing):
    """Insert `row`, which a unique key (an attempt's open_key, say) allows only once, and commit it; when
    another request inserted its twin first, roll back and return `existing()` — the row it made (or
    None). Concurrent starts of one quiz, sitting or contest attempt end with one row."""
    from sqlalchemy.exc import IntegrityError

    try:
        with db.session.begin_nested():
            db.session.add(row)
        db.session.commit()
        return row
    except IntegrityError:
        db.session.rollback()
        return existing()
