"""Backups proven by a restore: a fresh instance restored from a backup has the same rows and the same report;
a backup taken while an import is writing holds it wholly or not at all; rotation; reminders and their e-mail."""

import socketserver
import threading
import zipfile
from datetime import date, datetime, timedelta

import pytest
import sqlalchemy as sa

from registry import create_app
from registry.counties.models import Unit
from registry.kernel.extensions import db
from registry.kernel.periods import CHINA, Quarter
from registry.placements.models import Placement
from registry.reports.queries import quarter_figures
from registry.tasks import backup, reminders
from registry.tasks.models import Notification, NotificationSetting
from tests.conftest import TEST_DATABASE_URL, make_test_config

sqlite_only = pytest.mark.skipif(bool(TEST_DATABASE_URL), reason="PostgreSQL is backed up with pg_dump (README)")


def _figures(unit_id, quarter="2024Q2"):
    """The quarterly report's figures of one unit, field by field."""
    figures = quarter_figures(db.session.get(Unit, unit_id), Quarter.parse(quarter))
    return {name: repr(value) for name, value in vars(figures).items() if name != "generated_at"}


@sqlite_only
def test_a_backup_restores_into_a_fresh_instance(app, world, runner, tmp_path):
    result = runner.invoke(args=["backup", "now"])
    assert result.exit_code == 0, result.output
    path = sorted(backup_folder(app).glob("*.zip"))[-1]
    with app.app_context():
        counts = backup.row_counts()
        report = _figures(world.zhaojue)
    assert counts["placements"] == 2 and counts["users"] == 6

    fresh = create_app(make_test_config(f"sqlite:///{tmp_path / 'fresh.sqlite3'}") | {"BACKUP_FOLDER": str(tmp_path)})
    fresh.instance_path = str(tmp_path / "instance")
    result = fresh.test_cli_runner().invoke(args=["backup", "restore", str(path)])
    assert result.exit_code == 0, result.output
    assert "已从 registry-backup-" in result.output
    with fresh.app_context():
        assert backup.row_counts() == counts
        assert _figures(world.zhaojue) == report
    # A second restore over the data is refused unless forced.
    result = fresh.test_cli_runner().invoke(args=["backup", "restore", str(path)])
    assert result.exit_code != 0 and "已有数据" in result.output
    with zipfile.ZipFile(path) as archive:
        assert {"manifest.json", "registry.sqlite3"} <= set(archive.namelist())


def backup_folder(app):
    with app.app_context():
        return backup.backup_folder()


@sqlite_only
def test_a_backup_during_an_import_holds_it_wholly_or_not_at_all(app, world, tmp_path, monkeypatch):
    """A long import commits chunk by chunk: a backup taken between two chunks holds the committed ones and the
    import's event marked running; restored, the sweeper's recovery takes them back, so the instance holds none of
    it. A backup taken after the import holds all of it."""
    from registry.auth.models import User
    from registry.kernel import transfer
    from registry.kernel.database import writing
    from registry.kernel.transfer.reader import read_table
    from registry.placements.transfer import import_placements
    from tests.test_tasks_kill import _placements_csv

    monkeypatch.setattr("registry.placements.transfer.CHUNK", 100)
    taken = []
    monkeypatch.setattr(transfer, "CHECKPOINT_HOOKS", [
        lambda batch: taken or taken.append(backup.take(datetime(2026, 1, 1, 10, tzinfo=CHINA)))
    ])  # fmt: skip
    with app.app_context(), writing():
        before = db.session.scalar(sa.select(sa.func.count(Placement.id)))
        user = db.session.scalar(sa.select(User).where(User.username == "county"))
        headers, rows = read_table(_placements_csv(300), "t.csv")
        result = import_placements(headers, rows, user=user, filename="t.csv")
        assert result.created == 300 and not result.errors
        db.session.commit()
        after = backup.take(datetime(2026, 1, 2, 11, tzinfo=CHINA))
    for path, expected in ((taken[0], before), (after, before + 300)):
        fresh = create_app(make_test_config(f"sqlite:///{tmp_path / path.stem}.sqlite3"))
        fresh.instance_path = str(tmp_path / path.stem)
        result = fresh.test_cli_runner().invoke(args=["backup", "restore", str(path)])
        assert result.exit_code == 0, result.output
        with fresh.app_context(), writing():
            transfer.recover_imports(0)  # the first sweep after the restore
            assert db.session.scalar(sa.select(sa.func.count(Placement.id))) == expected
            # The import's own audit event follows its rows: both in, or both out.
            imports = db.session.scalar(sa.text("SELECT COUNT(*) FROM audit_events WHERE action = 'import'"))
            assert imports == (0 if expected == before else 1)


def test_rotation_keeps_daily_for_14_days_and_monthly_for_12(app, tmp_path):
    folder = tmp_path / "rot"
    folder.mkdir()
    now = datetime(2026, 11, 30, 3, tzinfo=CHINA)
    day = now
    for _ in range(500):  # two backups a day, back 250 days
        for hour in (2, 14):
            (folder / f"registry-backup-{day:%Y%m%d}-{hour:02d}0000.zip").write_bytes(b"")
        day -= timedelta(days=1)
    with app.app_context():
        backup.rotate(folder, now)
    kept = sorted(p.name for p in folder.iterdir())
    days = {n[16:24] for n in kept}
    assert len([d for d in days if d >= "20261117"]) == 14
    assert all(n.endswith("-140000.zip") for n in kept)  # the newest of its day
    months = {n[16:22] for n in kept}
    assert len(months) == 12 and min(months) == "202512"


class _SMTP(socketserver.StreamRequestHandler):
    """A local SMTP debugging server: accepts every message and keeps it."""

    def handle(self):
        def say(line):
            self.wfile.write(line.encode() + b"\r\n")

        say("220 localhost")
        data, lines = False, []
        for raw in self.rfile:
            line = raw.decode("utf-8", "replace").rstrip("\r\n")
            if data:
                if line == ".":
                    self.server.messages.append("\n".join(lines))
                    data, lines = False, []
                    say("250 OK")
                else:
                    lines.append(line)
                continue
            verb = line[:4].upper()
            if verb == "DATA":
                data = True
                say("354 go on")
            elif verb == "QUIT":
                say("221 bye")
                return
            elif verb in ("EHLO", "HELO"):
                say("250 localhost")
            else:
                say("250 OK")


@pytest.fixture
def smtp_server():
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _SMTP)
    server.messages = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def test_reminders_for_an_unwritten_narrative_are_notified_once_and_emailed(
    app, world, as_user, smtp_server, monkeypatch
):
    # Only the narrative check: the other modules' reminders (assets, ledger, disclosure) have tests of their own and
    # would find the world's records due too.
    monkeypatch.setattr(reminders, "REMINDERS", [reminders.narratives_due])
    today = date(2024, 7, 20)  # 2024Q2 ended 30 June; the narrative was due 15 July
    with app.app_context():
        assert reminders.notify(date(2024, 7, 10)) == 0  # not due yet
        db.session.add(NotificationSetting(user_id=world.county, email="county@example.org"))
        db.session.commit()
        app.config.update(MAIL_SERVER="127.0.0.1", MAIL_PORT=smtp_server.server_address[1])
        try:
            created = reminders.notify(today)
        finally:
            app.config.update(MAIL_SERVER=None, MAIL_PORT=25)
        assert reminders.notify(today) == 0  # never twice
        rows = db.session.scalars(sa.select(Notification).order_by(Notification.user_id)).all()
        assert created == len(rows) == 2  # the Zhaojue county office and the Liangshan prefecture office
        assert {r.user_id for r in rows} == {world.county, world.prefecture}
    assert len(smtp_server.messages) == 1 and "county@example.org" in smtp_server.messages[0]
    client = as_user("county")
    page = client.get("/").get_data(as_text=True)
    assert 'title="未读通知">1</span>' in page
    listing = client.get("/notifications/").get_data(as_text=True)
    assert (
        "昭觉县2024年第2季度季度报告的工作情况说明" in listing
        and f"/reports/{world.zhaojue}/2024Q2#narrative" in listing
    )
    client.post("/notifications/read")
    assert 'title="未读通知"' not in client.get("/").get_data(as_text=True)
