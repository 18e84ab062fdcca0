"""Configuration: safe defaults, then instance/config.py, then REGISTRY_* environment variables."""

import os
import secrets
from datetime import timedelta
from pathlib import Path


class Config:
    """Defaults for a single-machine office install. Every key can be overridden (see README, 配置)."""

    #: Generated into instance/secret_key on first run when not configured (see load_secret_key).
    SECRET_KEY = None
    #: Relative SQLite paths resolve against the instance folder (Flask-SQLAlchemy 3).
    SQLALCHEMY_DATABASE_URI = "sqlite:///registry.sqlite3"
    SQLALCHEMY_ENGINE_OPTIONS = {"pool_pre_ping": True}
    MIGRATIONS_DIR = str(Path(__file__).resolve().parent.parent / "migrations")
    #: One switch for deployments behind HTTPS: secure cookies, SameSite, shorter sessions, proxy headers.
    PRODUCTION = False
    #: Number of proxies in front of the app whose X-Forwarded-* headers are trusted (PRODUCTION only).
    PROXY_COUNT = 1
    SESSION_COOKIE_HTTPONLY = True
    SESSION_COOKIE_SAMESITE = "Lax"
    PERMANENT_SESSION_LIFETIME = timedelta(hours=12)
    #: Absolute lifetime of a login, however active the session is.
    LOGIN_MAX_AGE = timedelta(hours=12)
    REMEMBER_COOKIE_DURATION = timedelta(days=7)
    REMEMBER_COOKIE_HTTPONLY = True
    REMEMBER_COOKIE_SAMESITE = "Lax"
    WTF_CSRF_TIME_LIMIT = 8 * 3600
    #: WTForms' own Chinese messages (see forms.BaseForm.Meta); Flask-Babel is not used.
    WTF_I18N_ENABLED = False
    MAX_CONTENT_LENGTH = 20 * 1024 * 1024
    ITEMS_PER_PAGE = 25
    #: Login throttling (kept in the database, so it holds across worker processes).
    LOGIN_FAILURE_LIMIT = 5
    LOGIN_IP_FAILURE_LIMIT = 30
    LOGIN_FAILURE_WINDOW_MINUTES = 15
    PASSWORD_MIN_LENGTH = 10
    #: argon2id parameters (RFC 9106 low-memory profile). Tests lower them for speed.
    ARGON2_TIME_COST = 3
    ARGON2_MEMORY_COST = 65536
    ARGON2_PARALLELISM = 4
    #: Fernet key (``python -c "from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())"``)
    #: encrypting identity numbers at rest. Without it numbers are stored as typed. Keep it outside the database
    #: and its backups; losing it makes stored numbers unreadable.
    ID_NUMBER_KEY = None
    #: Name printed on reports and pages as the operating office.
    ORG_NAME = "四川省东西部协作工作办公室"
    #: The dates every form accepts (ISO text or dates); anything outside is refused with a message.
    DATE_MIN = "1949-10-01"
    DATE_MAX = "2100-12-31"


PRODUCTION_OVERRIDES = {
    "SESSION_COOKIE_SECURE": True,
    "SESSION_COOKIE_NAME": "__Host-session",
    "REMEMBER_COOKIE_SECURE": True,
    "PERMANENT_SESSION_LIFETIME": timedelta(hours=8),
    "LOGIN_MAX_AGE": timedelta(hours=8),
    "PREFERRED_URL_SCHEME": "https",
}


def normalise_database_url(url: str) -> str:
    """Accept the usual postgres:// and postgresql:// forms and select the psycopg 3 driver."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def load_secret_key(instance_path: str) -> str:
    """Read instance/secret_key, creating it with 64 random hex characters on first run."""
    path = Path(instance_path) / "secret_key"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_hex(32))
    return path.read_text().strip()
