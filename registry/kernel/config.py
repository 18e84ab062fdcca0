"""Configuration: safe defaults, then instance/config.py, then REGISTRY_* environment variables."""

import fcntl
import os
import secrets
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path


class Config:
    """Defaults for a single-machine office install. Every key can be overridden (see README, 配置)."""

    #: Generated into instance/secret_key on first run when not configured (see load_secret_key).
    SECRET_KEY = None
    #: Relative SQLite paths resolve against the instance folder (Flask-SQLAlchemy 3).
    SQLALCHEMY_DATABASE_URI = "sqlite:///registry.sqlite3"
    SQLALCHEMY_ENGINE_OPTIONS = {"pool_pre_ping": True}
    MIGRATIONS_DIR = str(Path(__file__).resolve().parents[2] / "migrations")
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
    #: Evidence files (附件): the largest file accepted (the request limit above stops a larger body unread).
    EVIDENCE_MAX_BYTES = 16 * 1024 * 1024
    #: Folder of evidence files when no bucket is set; instance/files/evidence when empty (backed up with it).
    EVIDENCE_FOLDER = None
    #: An S3-compatible bucket (MinIO, Ceph, a cloud's) for evidence files instead of the folder; credentials
    #: from the environment (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY). Such a bucket needs its own backups.
    EVIDENCE_S3_BUCKET = None
    EVIDENCE_S3_ENDPOINT_URL = None
    EVIDENCE_S3_REGION = None
    EVIDENCE_S3_PREFIX = "evidence/"
    ITEMS_PER_PAGE = 25
    #: Login throttling, kept in the database so it holds across worker processes (see auth/throttle.py).
    #: After LOGIN_FAILURE_LIMIT failures for one username from one address, that pair waits
    #: LOGIN_DELAY_MINUTES, doubling with each further failure up to LOGIN_MAX_DELAY_MINUTES; the same user from
    #: another address is not affected. A quiet LOGIN_FAILURE_WINDOW_MINUTES after the last failure (and delay)
    #: starts the count over; a successful login or an administrator's unlock clears it at once.
    LOGIN_FAILURE_LIMIT = 5
    #: Failures from one address over all usernames before that address is delayed the same way. Generous on
    #: purpose: a whole office behind one NAT address shares it.
    LOGIN_IP_FAILURE_LIMIT = 100
    LOGIN_FAILURE_WINDOW_MINUTES = 15
    LOGIN_DELAY_MINUTES = 1
    LOGIN_MAX_DELAY_MINUTES = 15
    PASSWORD_MIN_LENGTH = 10
    #: Lowest zxcvbn score (0–4) a new password must reach; 3 is "safely unguessable" (≈10⁸ guesses or more).
    PASSWORD_MIN_SCORE = 3
    #: argon2id parameters (RFC 9106 low-memory profile). Tests lower them for speed.
    ARGON2_TIME_COST = 3
    ARGON2_MEMORY_COST = 65536
    ARGON2_PARALLELISM = 4
    #: Fernet key (``python -c "from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())"``)
    #: encrypting identity numbers at rest and keying their fingerprints. When not configured it is read from
    #: instance/id_number_key, generated there on first run — except under PRODUCTION, which refuses to start
    #: without one (see load_id_number_key). Keep it outside the database and its backups; losing it makes stored
    #: numbers unreadable. ``flask idnumbers rotate`` replaces it.
    ID_NUMBER_KEY = None
    #: Name printed on reports and pages as the operating office.
    ORG_NAME = "四川省东西部协作工作办公室"
    #: Keep report figures and PDFs until the data change (table report_cache, see reports/cache.py).
    REPORT_CACHE = True
    #: Upper bound of the report cache; the oldest entries go first.
    REPORT_CACHE_MAX_MB = 256
    #: Processes (per web worker process) rendering PDF reports, so WeasyPrint never holds a web worker's
    #: core; 0 renders in the request itself.
    REPORT_PDF_WORKERS = 2
    #: Seconds a request waits for its PDF before answering 503; keep it below gunicorn's --timeout.
    REPORT_PDF_TIMEOUT = 100
    #: A quarter's report is due this many days after the quarter's end (the 10th day by default).
    REPORT_DUE_DAYS = 10
    #: The office's signing certificate for reports of record: a PKCS#12 file and its passphrase. When not set, a
    #: self-signed certificate is generated into instance/signing.p12 (passphrase in instance/signing.pass).
    SIGNING_PKCS12 = None
    SIGNING_PASSPHRASE = None
    #: The address the public reaches the registry at, printed in the verification QR code of a report of record
    #: (e.g. "https://xiezuo.example.gov.cn"); the request's own host when empty.
    VERIFY_BASE_URL = ""
    #: The dates every form accepts (ISO text or dates); anything outside is refused with a message.
    DATE_MIN = "1949-10-01"
    DATE_MAX = "2100-12-31"

    # ---- background tasks (registry/tasks) ----
    #: Where the queue keeps its tasks: unset means REDIS_URL when that is set, else instance/huey.sqlite3;
    #: or ``redis://host:6379/0``, ``sqlite:////path/huey.sqlite3``, ``memory://`` (tests without a consumer).
    TASKS_QUEUE_URL = None
    #: Redis for several web hosts and consumers (the README's deployment section); used when TASKS_QUEUE_URL is unset.
    REDIS_URL = None
    #: The queue's name (a key prefix in Redis): two installs sharing one Redis need different names.
    TASKS_QUEUE_NAME = "registry"
    #: Job files (uploads waiting for their import, result ZIPs); default instance/jobs.
    TASKS_FOLDER = None
    #: Finished jobs and their files are deleted after this many days.
    TASKS_KEEP_DAYS = 7
    #: A running job silent this long (no heartbeat, no progress) is taken for dead by the sweeper.
    TASKS_STALE_SECONDS = 120
    TASKS_HEARTBEAT_SECONDS = 10
    #: Longest pause between two looks at an empty SQLite queue (Redis waits on the queue instead).
    TASKS_POLL_MAX_SECONDS = 1.0
    #: Worker processes one report batch renders with (the engine of ``flask reports render``).
    TASKS_REPORT_WORKERS = os.cpu_count() or 1
    #: Uploads larger than this (bytes) are imported by a background task; smaller ones in the request.
    IMPORT_BACKGROUND_BYTES = 1024 * 1024
    #: Days after a quarter's end by which its narrative is due (reminded to county and prefecture offices).
    NARRATIVE_DUE_DAYS = 15
    #: Days after a quarter's report is due (REPORT_DUE_DAYS) during which the East liaisons may still confirm or
    #: dispute its figures, before or after approval (the East side's window, 双台账).
    CONFIRM_WINDOW_DAYS = 15
    #: 双销号: whether the person who requested a problem's 销号 may also sign its local (责任单位) side. No by
    #: default: the local sign-off is someone else's in the office (its head); a one-person office may allow it.
    PROBLEM_REQUESTER_MAY_SIGN = False
    #: SMTP for e-mailed notifications; off (None) by default.
    MAIL_SERVER = None
    MAIL_PORT = 25
    MAIL_USE_TLS = False
    MAIL_USERNAME = None
    MAIL_PASSWORD = None
    MAIL_FROM = "registry@localhost"
    #: The address users open the registry at, for links in e-mails (e.g. https://xiezuo.example.gov.cn).
    PUBLIC_URL = None
    #: Backups: folder (default instance/backups), whether the consumer takes one nightly (02:00), and rotation.
    BACKUP_FOLDER = None
    BACKUP_SCHEDULE = True
    BACKUP_KEEP_DAILY = 14
    BACKUP_KEEP_MONTHLY = 12
    #: Disclosure notices (公告公示): the local supervision number printed next to 12317 (a notice may give its own),
    #: requests per minute per address on the public pages (0: no limit), how long browsers and proxies may keep
    #: a public page, and how many days before a window ends its county office is reminded to record the postings.
    DISCLOSURE_PHONE = ""
    DISCLOSURE_RATE_LIMIT = 120
    DISCLOSURE_CACHE_SECONDS = 300
    DISCLOSURE_REMIND_DAYS = 3


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


#: Where the identity-number key lives when it is not configured, and the key a rotation is moving to.
ID_KEY_FILE = "id_number_key"
ID_KEY_NEXT_FILE = "id_number_key.next"


class ConfigurationError(RuntimeError):
    """The application must not start: the message says which setting to fix, in Chinese."""


def check_fernet_key(key: str, where: str) -> str:
    """``key`` if it is a valid Fernet key (32 url-safe base64 bytes), else a ConfigurationError naming ``where``."""
    from cryptography.fernet import Fernet

    try:
        Fernet(key)
    except (ValueError, TypeError) as exc:
        raise ConfigurationError(
            f"{where} 不是有效的 Fernet 密钥（应为 44 个字符的 URL 安全 Base64 文本，"
            '可用 python -c "from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())" 生成）。'
        ) from exc
    return key


def write_key_file(path: Path, key: str, *, keep_locked: bool = False) -> int | None:
    """Create ``path`` holding ``key`` (mode 600, never overwriting) and make it durable before returning.

    O_EXCL: two processes starting at once cannot both write a key (the loser reads the winner's). fsync of the
    file and of its folder: a key that a crash could lose would take every number encrypted with it along.
    With ``keep_locked`` the file stays open under an exclusive flock, whose descriptor is returned (closing it
    releases the lock): a rotation holds its .next file so, while it runs, no starting process takes it for
    the leftover of a crash (see load_id_number_key).
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        if keep_locked:
            fcntl.flock(fd, fcntl.LOCK_EX)
        os.write(fd, key.encode())
        os.fsync(fd)
    except BaseException:
        os.close(fd)
        raise
    _fsync_dir(path.parent)
    if keep_locked:
        return fd
    os.close(fd)
    return None


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def promote_next_key(instance_path: str) -> Path | None:
    """Make instance/id_number_key.next the current key, after the data was re-encrypted with it (committed).

    The old key is first copied to id_number_key.retired-<time> (mode 600): backups taken before the rotation
    still need it. Then the new key replaces the current file with one atomic rename, so at every moment
    id_number_key exists and holds a key the data can be read with. Returns the retired copy, if any.
    """
    from datetime import datetime

    folder = Path(instance_path)
    current, pending = folder / ID_KEY_FILE, folder / ID_KEY_NEXT_FILE
    retired = None
    if current.exists():
        retired = folder / f"{ID_KEY_FILE}.retired-{datetime.now():%Y%m%d%H%M%S%f}"
        write_key_file(retired, current.read_text().strip())
    os.replace(pending, current)
    _fsync_dir(folder)
    return retired


def load_id_number_key(
    instance_path: str, configured: str | None, *, production: bool, committed: Callable[[str], bool | None]
) -> str:
    """The identity-number key: configured, else instance/id_number_key, else (not in production) a new one.

    PRODUCTION never generates one: a key made silently on a new host would encrypt new numbers with a key nobody
    keeps, and could not read the numbers already stored. A production install configures ``ID_NUMBER_KEY``
    (instance/config.py or ``REGISTRY_ID_NUMBER_KEY``) or provides the file, e.g. copied from the old host.

    A leftover instance/id_number_key.next means a rotation stopped between writing its new key and renaming it
    into place. ``committed(new_key)`` asks the database whether the numbers are already encrypted with that key
    (True), still with the old one (False) or cannot tell (None): the rotation is then finished or undone here,
    so the key the app starts with always matches the data.
    """
    folder = Path(instance_path)
    pending = folder / ID_KEY_NEXT_FILE
    if pending.exists():
        _finish_rotation(instance_path, pending, committed)
    if configured:
        return check_fernet_key(configured, "ID_NUMBER_KEY")
    path = folder / ID_KEY_FILE
    if not path.exists():
        if production:
            raise ConfigurationError(
                "生产环境（PRODUCTION=True）必须提供身份证号加密密钥：请设置 ID_NUMBER_KEY"
                f"（instance/config.py 或环境变量 REGISTRY_ID_NUMBER_KEY），或放置密钥文件 {path}。"
                "生产环境不会自动生成密钥。"
            )
        from cryptography.fernet import Fernet

        try:
            write_key_file(path, Fernet.generate_key().decode())
        except FileExistsError:
            pass  # another process starting at the same moment wrote it first: use theirs
    return check_fernet_key(path.read_text().strip(), f"密钥文件 {path}")


def _finish_rotation(instance_path: str, pending: Path, committed: Callable[[str], bool | None]) -> None:
    try:
        fd = os.open(pending, os.O_RDONLY)
    except FileNotFoundError:
        return  # finished by another process meanwhile
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise ConfigurationError(
                "身份证号密钥正在轮换（flask idnumbers rotate），请等它完成后再启动应用。"
            ) from None
        if not pending.exists():
            return
        new_key = check_fernet_key(pending.read_text().strip(), f"密钥文件 {pending}")
        outcome = committed(new_key)
        if outcome is None:
            raise ConfigurationError(
                f"发现未完成的身份证号密钥轮换（{pending}），但无法确定数据库中的身份证号使用哪个密钥加密。"
                "请检查数据库连接后重试；切勿删除该文件。"
            )
        if outcome:
            promote_next_key(instance_path)
        else:
            pending.unlink()
    finally:
        os.close(fd)
