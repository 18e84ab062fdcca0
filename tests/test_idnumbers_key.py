"""The identity-number key: generated on first run (never under PRODUCTION), keyed fingerprints, and the commands
that encrypt numbers stored as typed and rotate the key — all or nothing, people and cells unchanged."""

import hashlib
import os
from datetime import date
from pathlib import Path

import pytest
import sqlalchemy as sa
from cryptography.fernet import Fernet, InvalidToken

from registry import create_app
from registry.kernel import idnumbers
from registry.kernel.audit.models import AuditEvent
from registry.kernel.config import ID_KEY_FILE, ID_KEY_NEXT_FILE, ConfigurationError, load_id_number_key, write_key_file
from registry.kernel.extensions import db
from registry.placements.cells import refresh_all_cells
from registry.placements.models import Person, Placement, PlacementCell
from registry.placements.rotation import key_in_use
from registry.placements.services import possible_duplicates, reveal_number
from tests.conftest import TEST_ID_NUMBER_KEY, make_test_config
from tests.factories import ID_A, World, make_placement

ID_B = "510824199203041239"  # World's placement in 苍溪
ID_C = "51343119880505123" + idnumbers.check_digit("51343119880505123")


def _app(tmp_path, monkeypatch, test_config=None, env=None):
    """An app whose instance folder is tmp_path/instance, with no REGISTRY_* variables but ``env``."""
    instance = tmp_path / "instance"
    instance.mkdir(exist_ok=True)
    for key in [k for k in os.environ if k.startswith("REGISTRY_") or k == "DATABASE_URL"]:
        monkeypatch.delenv(key)
    for key, value in (env or {}).items():
        monkeypatch.setenv(key, value)
    monkeypatch.setattr("flask.Flask.auto_find_instance_path", lambda self: str(instance))
    return create_app(test_config)


# -- the key at start-up --------------------------------------------------------------------------------------


def test_the_key_is_generated_once_into_the_instance_folder(tmp_path, monkeypatch):
    first = _app(tmp_path, monkeypatch)
    key_file = tmp_path / "instance" / ID_KEY_FILE
    assert key_file.read_text() == first.config["ID_NUMBER_KEY"] and first.config["ID_NUMBER_KEY_FILE"]
    assert oct(key_file.stat().st_mode & 0o777) == "0o600"
    Fernet(first.config["ID_NUMBER_KEY"])  # a real Fernet key
    assert _app(tmp_path, monkeypatch).config["ID_NUMBER_KEY"] == first.config["ID_NUMBER_KEY"]


def test_a_configured_key_wins_and_no_file_is_written(tmp_path, monkeypatch):
    key = Fernet.generate_key().decode()
    app = _app(tmp_path, monkeypatch, env={"REGISTRY_ID_NUMBER_KEY": key})
    assert app.config["ID_NUMBER_KEY"] == key and app.config["ID_NUMBER_KEY_FILE"] is None
    assert not (tmp_path / "instance" / ID_KEY_FILE).exists()


def test_production_without_a_key_refuses_to_start(tmp_path, monkeypatch):
    with pytest.raises(ConfigurationError, match="ID_NUMBER_KEY") as info:
        _app(tmp_path, monkeypatch, env={"REGISTRY_PRODUCTION": "true"})
    assert "生产环境" in str(info.value)
    assert not (tmp_path / "instance" / ID_KEY_FILE).exists()  # nothing generated
    # The key file copied from the old host is enough; so is a configured key.
    key = Fernet.generate_key().decode()
    write_key_file(tmp_path / "instance" / ID_KEY_FILE, key)
    assert _app(tmp_path, monkeypatch, env={"REGISTRY_PRODUCTION": "true"}).config["ID_NUMBER_KEY"] == key


def test_an_invalid_key_refuses_to_start_naming_the_setting(tmp_path, monkeypatch):
    with pytest.raises(ConfigurationError, match="ID_NUMBER_KEY 不是有效的 Fernet 密钥"):
        _app(tmp_path, monkeypatch, env={"REGISTRY_ID_NUMBER_KEY": "not-a-key"})


# -- stored values and fingerprints ---------------------------------------------------------------------------


def test_the_fingerprint_is_a_keyed_hmac_not_a_bare_hash():
    one, two = Fernet.generate_key(), Fernet.generate_key()
    assert idnumbers.fingerprint(ID_A, one) == idnumbers.fingerprint(ID_A, one)
    assert idnumbers.fingerprint(ID_A, one) != hashlib.sha256(ID_A.encode()).hexdigest()
    assert idnumbers.fingerprint(ID_A, one) != idnumbers.fingerprint(ID_A, two)
    assert idnumbers.fingerprint(ID_A, one) != idnumbers.fingerprint(ID_B, one)


@pytest.fixture
def w(world_records):
    return world_records


def test_the_stored_value_is_ciphertext_never_the_number(w):
    db.session.flush()
    stored = dict(db.session.execute(sa.select(Placement.id, Placement.id_stored)).all())
    assert stored and all(ID_A not in s and ID_B not in s and s.startswith("gAAAAA") for s in stored.values())
    assert reveal_number(db.session.get(Placement, w.placement_a.id), actor=None) == ID_A


# -- rotation -------------------------------------------------------------------------------------------------


def _state():
    """Everything rotation must keep: per placement its number and person, each person's fingerprint matching
    their placements', and the placement cells exactly."""
    placements = db.session.scalars(sa.select(Placement).order_by(Placement.id)).all()
    people = dict(db.session.execute(sa.select(Person.id, Person.fingerprint)).all())
    for p in placements:
        assert people[p.person_id] == p.id_fingerprint == idnumbers.fingerprint(idnumbers.reveal(p.id_stored))
    cells = db.session.execute(
        sa.select(PlacementCell.origin_county_id, PlacementCell.pairing_id, PlacementCell.household,
                  PlacementCell.destination_class, PlacementCell.start_year, PlacementCell.end_year,
                  PlacementCell.placements, PlacementCell.people)
        .order_by(PlacementCell.origin_county_id, PlacementCell.start_year, PlacementCell.household,
                  PlacementCell.destination_class, PlacementCell.end_year)
    ).all()  # fmt: skip
    return {
        "numbers": [(p.id, idnumbers.reveal(p.id_stored), p.person_id) for p in placements],
        "people": sorted(people),
        "cells": [tuple(c) for c in cells],
    }


def _raw():
    """The rows as stored, to show a failed command changed nothing."""
    return (
        db.session.execute(
            sa.text("SELECT id, id_stored, id_fingerprint, person_id FROM placements ORDER BY id")
        ).all(),
        db.session.execute(sa.text("SELECT id, fingerprint FROM people ORDER BY id")).all(),
        db.session.execute(sa.text("SELECT * FROM placement_cells ORDER BY id")).all(),
    )


@pytest.fixture
def registry_with_people(app, world):
    """The world plus a second job for ID_A and one more person, committed."""
    with app.app_context():
        zhaojue = db.session.get(Placement, world.placement_a).origin_county
        make_placement(zhaojue, start_date=date(2024, 6, 1))
        make_placement(zhaojue, id_number=ID_C, person_name="阿苦", start_date=date(2023, 1, 1))
        db.session.commit()
    yield world
    app.config["ID_NUMBER_KEY"] = TEST_ID_NUMBER_KEY


def test_rotation_reencrypts_and_keeps_numbers_people_and_cells(app, runner, registry_with_people):
    with app.app_context():
        before = _state()
        old_stored = dict(db.session.execute(sa.select(Placement.id, Placement.id_stored)).all())
    new_key = Fernet.generate_key().decode()
    result = runner.invoke(args=["idnumbers", "rotate", "--new-key", new_key])
    assert result.exit_code == 0, result.output
    assert "身份证号 4 条" in result.output and "换密钥 4" in result.output and "人员 3 人" in result.output
    assert all(n not in result.output for n in (ID_A, ID_B, ID_C, new_key, TEST_ID_NUMBER_KEY))
    assert app.config["ID_NUMBER_KEY"] == new_key
    with app.app_context():
        stored = dict(db.session.execute(sa.select(Placement.id, Placement.id_stored)).all())
        for placement_id, value in stored.items():
            assert value != old_stored[placement_id]
            with pytest.raises(InvalidToken):
                Fernet(TEST_ID_NUMBER_KEY).decrypt(value.encode())
        after = _state()  # numbers reveal under the new key; fingerprints and people agree
        assert after == before
        # A new placement of a known person finds them under the new key: same person id as before.
        zhaojue = db.session.get(Placement, registry_with_people.placement_a).origin_county
        again = make_placement(zhaojue, start_date=date(2024, 9, 1))
        assert again.person_id == db.session.get(Placement, registry_with_people.placement_a).person_id
        assert len(db.session.scalars(possible_duplicates()).all()) == 0
        events = db.session.scalars(sa.select(AuditEvent).where(AuditEvent.action == "rekey_ids")).all()
        assert len(events) == 1 and "换密钥 4" in events[0].summary and ID_A not in events[0].summary
        db.session.rollback()


def test_numbers_stored_as_typed_are_encrypted_and_their_people_merged(app, runner, registry_with_people):
    """A database from before the key: plain numbers with bare-hash fingerprints, and a person entered twice —
    once before the key (bare hash) and once after (keyed) — who counts twice until `encrypt` merges them."""
    with app.app_context():
        before = _state()
        legacy_b = db.session.get(Placement, registry_with_people.placement_b)
        bare = hashlib.sha256(ID_B.encode()).hexdigest()
        db.session.execute(sa.update(Person).where(Person.id == legacy_b.person_id).values(fingerprint=bare))
        db.session.execute(
            sa.update(Placement).where(Placement.id == legacy_b.id).values(id_stored=ID_B, id_fingerprint=bare)
        )
        second_job = db.session.scalars(sa.select(Placement).where(Placement.start_date == date(2024, 6, 1))).one()
        bare_a = hashlib.sha256(ID_A.encode()).hexdigest()
        twin = Person(fingerprint=bare_a)
        db.session.add(twin)
        db.session.flush()
        twin_id = twin.id
        db.session.execute(
            sa.update(Placement)
            .where(Placement.id == second_job.id)
            .values(id_stored=ID_A, id_fingerprint=bare_a, person_id=twin_id)
        )
        refresh_all_cells()
        db.session.commit()
        assert reveal_number(db.session.get(Placement, legacy_b.id), actor=None) == ID_B  # readable meanwhile
        assert db.session.scalar(sa.select(sa.func.count(Person.id))) == 4
        db.session.rollback()
    status = runner.invoke(args=["idnumbers", "status"])
    assert "明文 2" in status.output and "当前密钥加密 2" in status.output and "encrypt" in status.output
    result = runner.invoke(args=["idnumbers", "encrypt"])
    assert result.exit_code == 0, result.output
    assert "新加密 2" in result.output and "未变 2" in result.output and "合并或移除 1" in result.output
    with app.app_context():
        assert _state() == before  # the twin is gone, ID_A's jobs are one person again, cells as before
        assert db.session.get(Person, twin_id) is None
        plain = db.session.scalar(sa.select(sa.func.count(Placement.id)).where(~Placement.id_stored.startswith("gA")))
        assert plain == 0
    assert "明文 0" in runner.invoke(args=["idnumbers", "status"]).output
    again = runner.invoke(args=["idnumbers", "encrypt"])  # as `make db-upgrade` runs it every time
    assert again.exit_code == 0 and "新加密 0" in again.output and "未变 4" in again.output
    with app.app_context():
        assert _state() == before
        assert db.session.scalar(sa.select(sa.func.count()).where(AuditEvent.action == "rekey_ids")) == 1


def test_an_unreadable_number_stops_the_rotation_before_anything_is_written(app, runner, registry_with_people):
    with app.app_context():
        last = db.session.scalar(sa.select(sa.func.max(Placement.id)))
        foreign = Fernet(Fernet.generate_key()).encrypt(ID_C.encode()).decode()
        db.session.execute(sa.update(Placement).where(Placement.id == last).values(id_stored=foreign))
        db.session.commit()
        before = _raw()
    result = runner.invoke(args=["idnumbers", "rotate", "--new-key", Fernet.generate_key().decode()])
    assert result.exit_code != 0
    assert "未做任何修改" in result.output and f"记录编号 {last}" in result.output and ID_C not in result.output
    assert app.config["ID_NUMBER_KEY"] == TEST_ID_NUMBER_KEY
    with app.app_context():
        assert _raw() == before
        assert db.session.scalar(sa.select(sa.func.count()).where(AuditEvent.action == "rekey_ids")) == 0


def test_a_failure_midway_writes_nothing(app, runner, registry_with_people, monkeypatch):
    """The second pass fails on its last row, after earlier rows were already updated: all of it is undone."""
    import registry.placements.rotation as rotation

    monkeypatch.setattr(rotation, "CHUNK", 1)  # one UPDATE per placement, so some are written before the failure
    reads = {"n": 0}
    real_read = rotation._Reader.read

    def failing_read(self, stored):
        reads["n"] += 1
        if reads["n"] == 8:  # 4 placements: pass 1 reads 1-4, pass 2 reads 5-8
            raise RuntimeError("disk on fire")
        return real_read(self, stored)

    monkeypatch.setattr(rotation._Reader, "read", failing_read)
    with app.app_context():
        before = _raw()
    result = runner.invoke(args=["idnumbers", "rotate", "--new-key", Fernet.generate_key().decode()])
    assert result.exit_code != 0 and isinstance(result.exception, RuntimeError) and reads["n"] == 8
    with app.app_context():
        assert _raw() == before
        assert db.session.scalar(sa.select(sa.func.count()).where(AuditEvent.action == "rekey_ids")) == 0


def test_a_configured_key_needs_the_new_key_given(runner, registry_with_people):
    result = runner.invoke(args=["idnumbers", "rotate"])
    assert result.exit_code != 0 and "--new-key" in result.output
    result = runner.invoke(args=["idnumbers", "rotate", "--new-key", "short"])
    assert result.exit_code != 0 and "不是有效的 Fernet 密钥" in result.output


def test_rotating_a_key_file_replaces_it_after_the_commit(app, database_url, tmp_path, monkeypatch):
    """The key in instance/: the command makes the new key, moves it into place and keeps the old one aside."""
    config = make_test_config(database_url)
    del config["ID_NUMBER_KEY"]
    own = _app(tmp_path, monkeypatch, test_config=config)
    instance = Path(own.instance_path)
    old_key = (instance / ID_KEY_FILE).read_text()
    try:
        with own.app_context():
            World()
            db.session.commit()
            numbers = {p.id: reveal_number(p, actor=None) for p in db.session.scalars(sa.select(Placement))}
            db.session.rollback()
        # A rotation that fails leaves the key file alone and removes the new key it had written.
        with monkeypatch.context() as patch:
            patch.setattr("registry.placements.rotation._Reader.read", lambda self, stored: 1 / 0)
            failed = own.test_cli_runner().invoke(args=["idnumbers", "rotate"])
        assert isinstance(failed.exception, ZeroDivisionError)
        assert sorted(p.name for p in instance.glob("id_number_key*")) == [ID_KEY_FILE]
        assert (instance / ID_KEY_FILE).read_text() == old_key and own.config["ID_NUMBER_KEY"] == old_key
        result = own.test_cli_runner().invoke(args=["idnumbers", "rotate"])
        assert result.exit_code == 0, result.output
        new_key = (instance / ID_KEY_FILE).read_text()
        assert new_key != old_key and own.config["ID_NUMBER_KEY"] == new_key and new_key not in result.output
        assert oct((instance / ID_KEY_FILE).stat().st_mode & 0o777) == "0o600"
        assert not (instance / ID_KEY_NEXT_FILE).exists()
        (retired,) = instance.glob(f"{ID_KEY_FILE}.retired-*")
        assert retired.read_text() == old_key and oct(retired.stat().st_mode & 0o777) == "0o600"
        # A fresh start reads the new key from the file and every number as before.
        again = _app(tmp_path, monkeypatch, test_config=config)
        with again.app_context():
            assert {p.id: reveal_number(p, actor=None) for p in db.session.scalars(sa.select(Placement))} == numbers
            db.session.rollback()
            db.session.remove()
            db.engine.dispose()
    finally:
        with own.app_context():
            db.session.remove()
            db.engine.dispose()


# -- a rotation interrupted between the commit and the rename -------------------------------------------------


def _pending(tmp_path):
    folder = tmp_path / "instance"
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    write_key_file(folder / ID_KEY_FILE, old)
    write_key_file(folder / ID_KEY_NEXT_FILE, new)
    return folder, old, new


def test_an_interrupted_rotation_is_finished_when_the_database_already_uses_the_new_key(tmp_path):
    folder, old, new = _pending(tmp_path)
    assert load_id_number_key(str(folder), None, production=True, committed=lambda key: key == new) == new
    assert (folder / ID_KEY_FILE).read_text() == new and not (folder / ID_KEY_NEXT_FILE).exists()
    assert [p.read_text() for p in folder.glob(f"{ID_KEY_FILE}.retired-*")] == [old]


def test_an_interrupted_rotation_is_undone_when_the_database_still_uses_the_old_key(tmp_path):
    folder, old, new = _pending(tmp_path)
    assert load_id_number_key(str(folder), None, production=True, committed=lambda key: False) == old
    assert (folder / ID_KEY_FILE).read_text() == old and not (folder / ID_KEY_NEXT_FILE).exists()


def test_an_interrupted_rotation_that_cannot_be_decided_refuses_to_start(tmp_path):
    folder, old, new = _pending(tmp_path)
    with pytest.raises(ConfigurationError, match="切勿删除"):
        load_id_number_key(str(folder), None, production=False, committed=lambda key: None)
    assert (folder / ID_KEY_FILE).read_text() == old and (folder / ID_KEY_NEXT_FILE).read_text() == new


def test_a_rotation_in_progress_is_not_taken_for_an_interrupted_one(tmp_path):
    folder = tmp_path / "instance"
    write_key_file(folder / ID_KEY_FILE, Fernet.generate_key().decode())
    lock = write_key_file(folder / ID_KEY_NEXT_FILE, Fernet.generate_key().decode(), keep_locked=True)
    try:
        with pytest.raises(ConfigurationError, match="正在轮换"):
            load_id_number_key(str(folder), None, production=False, committed=lambda key: False)
        assert (folder / ID_KEY_NEXT_FILE).exists()
    finally:
        os.close(lock)


def test_the_database_tells_which_key_its_numbers_are_under(app, world, database_url, tmp_path):
    committed = key_in_use(database_url, str(tmp_path))
    assert committed(TEST_ID_NUMBER_KEY) is True
    assert committed(Fernet.generate_key().decode()) is False
    assert key_in_use("postgresql+psycopg://nobody@127.0.0.1:1/none", str(tmp_path))(TEST_ID_NUMBER_KEY) is None
