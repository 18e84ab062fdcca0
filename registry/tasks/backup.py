"""Backups that a restore can prove: the database, the instance keys and the stored files, in one ZIP.

SQLite is copied with SQLite's online backup API (``sqlite3.Connection.backup``) in one step, which reads one
consistent snapshot while the app goes on writing (WAL): a write transaction in progress (an import) is wholly
absent, a committed one wholly present. Never a file copy of a live database, which can catch a half-written page.
On PostgreSQL the database part is ``pg_dump --format=custom`` (when the client is installed); see the README.

Each backup is ``registry-backup-YYYYmmdd-HHMMSS.zip`` (China time) in ``BACKUP_FOLDER`` with a ``manifest.json``
(time, database kind, schema revision, row count of every table). Rotation keeps the newest backup of each of the
last ``BACKUP_KEEP_DAILY`` days and of each of the last ``BACKUP_KEEP_MONTHLY`` months.

The ZIP holds the identity-number key next to the numbers it decrypts, as the restore needs both: keep the backup
folder as protected as the instance folder (files are written mode 600), and off the database host.
"""

import json
import os
import re
import shutil
import sqlite3
import subprocess
import tempfile
import zipfile
from datetime import datetime
from pathlib import Path

import sqlalchemy as sa
from flask import current_app

from registry.kernel.config import ID_KEY_FILE
from registry.kernel.extensions import db
from registry.kernel.periods import CHINA
from registry.kernel.services import ServiceError

NAME_RE = re.compile(r"^registry-backup-(\d{8})-(\d{6})\.zip$")
#: Files of the instance folder that belong to the deployment (keys); the database and stored files are added.
KEY_FILES = ("secret_key", ID_KEY_FILE)
#: Instance sub-folders holding stored files (attachments of later modules), copied whole when present.
FILE_FOLDERS = ("files",)
DB_NAME = "registry.sqlite3"
PG_NAME = "registry.pgdump"


def backup_folder() -> Path:
    folder = Path(current_app.config.get("BACKUP_FOLDER") or os.path.join(current_app.instance_path, "backups"))
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    return folder


def _sqlite_path() -> str | None:
    url = db.engine.url
    return url.database if url.get_backend_name() == "sqlite" else None


def row_counts(engine=None) -> dict[str, int]:
    """Rows per table of the application's schema. The keyword index's tables (SQLite FTS5, contentless: they
    cannot be scanned) are left out: they are derived, and rebuilt from the records they index."""
    engine = engine or db.engine
    names = set(sa.inspect(engine).get_table_names()) & (set(db.metadata.tables) | {"alembic_version"})
    with engine.connect() as conn:
        return {n: conn.execute(sa.text(f'SELECT COUNT(*) FROM "{n}"')).scalar_one() for n in sorted(names)}


def _copy_sqlite(source: str, target: str) -> None:
    """One-step online backup: the copy is one snapshot of ``source`` (see the module docstring)."""
    src = sqlite3.connect(source, timeout=30)
    dst = sqlite3.connect(target)
    try:
        src.backup(dst)  # pages=-1: everything in one step, under one read transaction
    finally:
        dst.close()
        src.close()


def take(now: datetime | None = None) -> Path:
    """Write a backup ZIP and return its path; then rotate the folder."""
    now = (now or datetime.now(CHINA)).astimezone(CHINA)
    folder = backup_folder()
    target = folder / f"registry-backup-{now:%Y%m%d-%H%M%S}.zip"
    instance = Path(current_app.instance_path)
    with tempfile.TemporaryDirectory(prefix="registry-backup-") as scratch:
        scratch = Path(scratch)
        path = _sqlite_path()
        if path:
            _copy_sqlite(path, str(scratch / DB_NAME))
            copy = sa.create_engine(f"sqlite:///{scratch / DB_NAME}")
            counts = row_counts(copy)
            revision = _revision(copy)
            copy.dispose()
            database = "sqlite"
        else:
            _pg_dump(scratch / PG_NAME)
            counts, revision, database = row_counts(), _revision(db.engine), "postgresql"
        manifest = {
            "created": now.isoformat(timespec="seconds"),
            "database": database,
            "revision": revision,
            "rows": counts,
            "keys": [n for n in KEY_FILES if (instance / n).is_file()],
        }
        partial = target.with_name(target.name + ".part")
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as raw, zipfile.ZipFile(raw, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            archive.writestr("manifest.json", json.dumps(manifest, ensure_ascii=False, indent=1))
            archive.write(scratch / (DB_NAME if path else PG_NAME), arcname=DB_NAME if path else PG_NAME)
            for name in manifest["keys"]:
                archive.write(instance / name, arcname=f"instance/{name}")
            for sub in FILE_FOLDERS:
                for file in sorted((instance / sub).rglob("*")) if (instance / sub).is_dir() else []:
                    if file.is_file():
                        archive.write(file, arcname=f"instance/{file.relative_to(instance)}")
        os.replace(partial, target)
    rotate(folder, now)
    return target


def _revision(engine) -> str:
    try:
        with engine.connect() as conn:
            return conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar() or ""
    except sa.exc.DBAPIError:
        return ""


def _pg_url() -> str:
    return db.engine.url.set(drivername="postgresql").render_as_string(hide_password=False)


def _pg_dump(target: Path) -> None:
    if not shutil.which("pg_dump"):
        raise ServiceError("未找到 pg_dump：PostgreSQL 数据库请安装 postgresql-client 后再备份（见 README“备份”）。")
    subprocess.run(["pg_dump", "--format=custom", "--file", str(target), _pg_url()], check=True)  # noqa: S603, S607


def rotate(folder: Path, now: datetime) -> list[Path]:
    """Delete backups beyond the newest per day (last BACKUP_KEEP_DAILY days) and per month (last
    BACKUP_KEEP_MONTHLY months); returns the deleted files."""
    daily = int(current_app.config["BACKUP_KEEP_DAILY"])
    monthly = int(current_app.config["BACKUP_KEEP_MONTHLY"])
    backups = sorted(((m.group(1) + m.group(2), f) for f in folder.iterdir() if (m := NAME_RE.match(f.name))),
                     reverse=True)  # fmt: skip
    keep, days, months = set(), {}, {}
    today = now.date()
    for stamp, file in backups:
        day = datetime.strptime(stamp[:8], "%Y%m%d").date()
        if (today - day).days < daily and day not in days:
            days[day] = file
        month = stamp[:6]
        month_age = (today.year - day.year) * 12 + today.month - day.month
        if month_age < monthly and month not in months:
            months[month] = file
    keep = set(days.values()) | set(months.values())
    deleted = [f for _, f in backups if f not in keep]
    for file in deleted:
        file.unlink(missing_ok=True)
    return deleted


def restore(archive_path: Path, *, force: bool = False) -> dict:
    """Restore a backup into this app's database and instance folder; returns its manifest.

    Refuses a database that holds data, and then keys that differ from the backup's, unless ``force``: a restore
    replaces everything, and a key replaced by mistake makes the numbers encrypted with it unreadable. Into an
    instance without data (a fresh one, whose start-up made keys of its own) it needs no force; the keys it
    replaces are kept beside as ``<name>.replaced-<time>``.
    """
    if not zipfile.is_zipfile(archive_path):
        raise ServiceError(f"{archive_path} 不是备份文件（ZIP）。")
    instance = Path(current_app.instance_path)
    with zipfile.ZipFile(archive_path) as archive, tempfile.TemporaryDirectory(prefix="registry-restore-") as tmp:
        try:
            manifest = json.loads(archive.read("manifest.json"))
        except KeyError:
            raise ServiceError(f"{archive_path} 中没有 manifest.json，不是本系统的备份。") from None
        path = _sqlite_path()
        if (manifest["database"] == "sqlite") != bool(path):
            raise ServiceError(f"备份的数据库是 {manifest['database']}，与当前配置的数据库类型不同，无法恢复。")
        empty = not any(n != "alembic_version" and c for n, c in row_counts().items())
        if not force and not empty:
            raise ServiceError("当前数据库中已有数据；确认要用备份覆盖时请加 --force。")
        replaced = []
        for name in manifest["keys"]:
            present = instance / name
            kept = archive.read(f"instance/{name}").decode().strip()
            if present.is_file() and present.read_text().strip() != kept:
                # A fresh instance's start-up made keys of its own; with no data nothing was written with them, so
                # the backup's replace them (the normal restore). Over data they are refused unless forced.
                if not force and not empty:
                    raise ServiceError(f"实例目录中的 {name} 与备份中的不同；确认要替换时请加 --force。")
                replaced.append(present)
        archive.extractall(tmp)
        stamp = datetime.now(CHINA).strftime("%Y%m%d%H%M%S")
        for present in replaced:  # kept beside, never lost: a key is the only way to read what it encrypted
            shutil.copy2(present, present.with_name(f"{present.name}.replaced-{stamp}"))
        db.session.remove()
        db.engine.dispose()
        if path:
            _copy_sqlite(os.path.join(tmp, DB_NAME), path)
        else:
            dump = os.path.join(tmp, PG_NAME)
            command = ["pg_restore", "--clean", "--if-exists", "--no-owner", "--dbname", _pg_url(), dump]
            subprocess.run(command, check=True)  # noqa: S603
        for file in Path(tmp, "instance").rglob("*"):
            if file.is_file():
                target = instance / file.relative_to(Path(tmp, "instance"))
                target.parent.mkdir(parents=True, exist_ok=True)
                fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
                with os.fdopen(fd, "wb") as out:
                    out.write(file.read_bytes())
    return manifest
