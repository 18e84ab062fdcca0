"""A backup restored into a fresh, empty instance (#24 section 4): start-up has made keys of its own there, and the
restore takes the backup's without --force (the normal case), keeping the replaced ones beside; over data, or keys
that differ in an instance with data, it still refuses unless forced. On SQLite and PostgreSQL (pg_dump)."""

import json
import shutil
import uuid
import zipfile

import pytest
import sqlalchemy as sa

from registry import create_app
from registry.kernel.extensions import db
from registry.tasks import backup
from tests.conftest import TEST_DATABASE_URL, make_test_config


@pytest.fixture
def fresh_url(tmp_path):
    """A database of its own for the fresh instance (PostgreSQL: h2_restore_…, dropped afterwards)."""
    if not TEST_DATABASE_URL:
        yield f"sqlite:///{tmp_path / 'fresh.sqlite3'}"
        return
    if not shutil.which("pg_dump") or not shutil.which("pg_restore"):
        pytest.skip("pg_dump / pg_restore not installed")
    name = f"h2_restore_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(TEST_DATABASE_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    yield sa.engine.make_url(TEST_DATABASE_URL).set(database=name).render_as_string(hide_password=False)
    with admin.connect() as conn:
        conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin.dispose()


def _with_keys(path, keys: dict):
    """The backup at ``path`` as one taken from an instance holding ``keys`` (name -> content)."""
    with zipfile.ZipFile(path) as archive:
        members = {n: archive.read(n) for n in archive.namelist() if not n.startswith("instance/")}
    manifest = json.loads(members["manifest.json"])
    manifest["keys"] = sorted(keys)
    members["manifest.json"] = json.dumps(manifest).encode()
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
        for name, content in keys.items():
            archive.writestr(f"instance/{name}", content)


def test_a_backup_restores_into_a_fresh_instance_without_force(app, world, tmp_path, fresh_url, monkeypatch):
    monkeypatch.setitem(app.config, "BACKUP_FOLDER", str(tmp_path / "backups"))
    with app.app_context():
        path = backup.take()
        counts = backup.row_counts()
    _with_keys(path, {"secret_key": "backup-secret\n", "id_number_key": "backup-id-key\n"})

    # A fresh instance: its start-up wrote keys of its own, the migrations made empty tables.
    instance = tmp_path / "instance"
    instance.mkdir()
    (instance / "secret_key").write_text("made-at-start-up\n")
    (instance / "id_number_key").write_text("also-made-at-start-up\n")
    fresh = create_app(make_test_config(fresh_url) | {"BACKUP_FOLDER": str(tmp_path / "backups")})
    fresh.instance_path = str(instance)
    with fresh.app_context():
        db.create_all()
        db.session.commit()
        db.session.remove()
        db.engine.dispose()

    result = fresh.test_cli_runner().invoke(args=["backup", "restore", str(path)])
    assert result.exit_code == 0, result.output
    assert "已从 registry-backup-" in result.output
    assert (instance / "secret_key").read_text() == "backup-secret\n"
    assert (instance / "id_number_key").read_text() == "backup-id-key\n"
    kept = sorted(p.name.split(".replaced-")[0] for p in instance.glob("*.replaced-*"))
    assert kept == ["id_number_key", "secret_key"]
    assert sorted((instance / n).read_text() for n in [p.name for p in instance.glob("*.replaced-*")]) == [
        "also-made-at-start-up\n", "made-at-start-up\n"
    ]  # fmt: skip
    with fresh.app_context():
        assert {n: c for n, c in backup.row_counts().items() if c} == {n: c for n, c in counts.items() if c}
        db.session.remove()
        db.engine.dispose()

    # Now the instance holds data: a restore is refused unless forced, whatever its keys.
    (instance / "secret_key").write_text("changed since\n")
    result = fresh.test_cli_runner().invoke(args=["backup", "restore", str(path)])
    assert result.exit_code != 0 and "已有数据" in result.output
    assert (instance / "secret_key").read_text() == "changed since\n"
    with fresh.app_context():
        db.session.remove()
        db.engine.dispose()
