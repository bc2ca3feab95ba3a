"""Flask extensions, created once and bound in the app factory."""
from flask_babel import Babel
from flask_login import LoginManager
from flask_migrate import Migrate
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

db = SQLAlchemy(metadata=MetaData(naming_convention=naming_convention))
migrate = Migrate()
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
