"""Re-encrypt every stored identity number under one key: numbers stored as typed (before the key), numbers under
an old key, or both. Fingerprints follow the key (see ``registry.kernel.idnumbers``), so they are recomputed with the
ciphertexts, and each person keeps the integer id the placement cells count them by.

All of it happens in the caller's transaction: the caller commits once, or rolls back and nothing was written.
The placements and people are locked against other writers for the duration; the application should still be
stopped, since running workers hold the old key in memory and would go on writing with it.

Which key the database uses after a crash is decided by ``key_in_use``: the key file and the database cannot
change in one step, so the commands write the new key beside the old one first (instance/id_number_key.next),
commit, and only then move it into place; a start that finds the .next file asks the database which it is.
"""

from collections.abc import Callable, Iterable
from dataclasses import dataclass

import sqlalchemy as sa
from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from flask import current_app

from registry.kernel import idnumbers
from registry.kernel.audit.services import record
from registry.kernel.extensions import db
from registry.kernel.services import ServiceError
from registry.placements.cells import refresh_cells
from registry.placements.models import Person, Placement

CHUNK = 2000
#: Temporary fingerprint of a person while their new one is worked out (no hex fingerprint starts like this).
PARKED = "rotating:"
#: Fernet tokens start with the version byte 0x80, base64 "gA".
TOKEN_PREFIX = "gAAAAA"


@dataclass
class RotationResult:
    placements: int = 0
    #: Were stored as typed, now encrypted.
    encrypted: int = 0
    #: Were encrypted under another key, now under the new one.
    reencrypted: int = 0
    #: Already encrypted under the new key.
    unchanged: int = 0
    people: int = 0
    #: People folded into another because both had the same number (fingerprints from before the key, or two
    #: keys) or removed because no placement refers to them any more.
    people_removed: int = 0
    #: People split off because placements of one person id turned out to hold different numbers.
    people_added: int = 0

    @property
    def summary(self) -> str:
        return (
            f"身份证号 {self.placements} 条：新加密 {self.encrypted}，换密钥 {self.reencrypted}，"
            f"未变 {self.unchanged}；人员 {self.people} 人（合并或移除 {self.people_removed}，"
            f"新增 {self.people_added}）。"
        )


def _tables():
    return Placement.__table__, Person.__table__


def _lock() -> None:
    """Keep other writers out of placements and people until the transaction ends (readers go on)."""
    placements, people = _tables()
    if db.session.get_bind().dialect.name == "postgresql":
        db.session.execute(sa.text(f"LOCK TABLE {placements.name}, {people.name} IN SHARE ROW EXCLUSIVE MODE"))
    else:
        # SQLite: the first write of a transaction takes the database's write lock, held to the end; this one
        # changes nothing but takes it before anything is read.
        db.session.execute(sa.update(people).where(people.c.id < 0).values(fingerprint=people.c.fingerprint))


def _chunks():
    """All placements, CHUNK rows at a time, by id (keyset: the updates below never change an id)."""
    placements, _ = _tables()
    c = placements.c
    after = 0
    while True:
        rows = db.session.execute(
            sa.select(c.id, c.id_stored, c.id_fingerprint, c.person_id, c.origin_county_id, c.start_date)
            .where(c.id > after)
            .order_by(c.id)
            .limit(CHUNK)
        ).all()
        if not rows:
            return
        yield rows
        after = rows[-1].id


class _Reader:
    """Numbers from stored values: plain, under the new key, or under any of the old ones."""

    def __init__(self, new_key: str, old_keys: Iterable[str]):
        self.new = Fernet(new_key)
        olds = [k for k in dict.fromkeys(old_keys) if k and k != new_key]
        self.old = MultiFernet([Fernet(k) for k in olds]) if olds else None

    def read(self, stored: str) -> tuple[str, str]:
        """(number, how): how is "plain", "new" or "old"; InvalidToken when no key opens it."""
        if idnumbers.is_plain(stored):
            return stored, "plain"
        token = stored.encode()
        try:
            return self.new.decrypt(token).decode(), "new"
        except InvalidToken:
            if self.old is None:
                raise
            return self.old.decrypt(token).decode(), "old"


def reencrypt(new_key: str, *, old_keys: Iterable[str] = (), actor=None) -> RotationResult:
    """Encrypt every stored number under ``new_key``, reading what is there with ``old_keys`` (or as typed).

    First every value is read, and a value no key opens stops everything before anything is written. Then each
    distinct number gets one person: the lowest person id among its placements (so, normally, every person keeps
    their id and only their fingerprint changes); two ids with the same number are merged into that one, and
    cells of the placements whose person id changed are rebuilt. People no placement refers to are removed: their
    fingerprint, made under the old key, could not be recomputed, and nothing counts them.
    """
    placements, people = _tables()
    reader = _Reader(new_key, old_keys)
    mac_key = idnumbers.fingerprint_key(new_key)
    _lock()
    result = RotationResult()
    result.people_removed = (
        db.session.execute(sa.delete(people).where(~sa.exists().where(placements.c.person_id == people.c.id))).rowcount
        or 0
    )

    # Pass 1: read everything, fail early, and decide each number's person.
    lowest: dict[str, int] = {}
    unreadable: list[int] = []
    changes = False
    for rows in _chunks():
        for row in rows:
            try:
                number, how = reader.read(row.id_stored)
            except InvalidToken:
                unreadable.append(row.id)
                continue
            new_fingerprint = idnumbers.keyed_fingerprint(mac_key, number)
            lowest[new_fingerprint] = min(lowest.get(new_fingerprint, row.person_id), row.person_id)
            changes = changes or how != "new" or new_fingerprint != row.id_fingerprint
    if unreadable:
        shown = "、".join(str(i) for i in unreadable[:20])
        raise ServiceError(
            f"未做任何修改：{len(unreadable)} 条劳务协作记录的身份证号无法用所给密钥解密"
            f"（记录编号 {shown}{' 等' if len(unreadable) > 20 else ''}）。请用 --old-key 提供保存这些号码时的密钥。"
        )
    person_of: dict[str, int | None] = {}
    claimed: set[int] = set()
    for new_fingerprint, person_id in sorted(lowest.items(), key=lambda item: item[1]):
        # A person id already given to another number (one id, two numbers): this number gets a new person.
        person_of[new_fingerprint] = None if person_id in claimed else person_id
        claimed.add(person_id)
    total_people = db.session.scalar(sa.select(sa.func.count()).select_from(people))
    changes = changes or len(claimed) != total_people or None in person_of.values()

    if changes:
        # Park every fingerprint first: a person's new fingerprint may be one another person holds right now.
        db.session.execute(sa.update(people).values(fingerprint=sa.literal(PARKED) + sa.cast(people.c.id, sa.String)))
        db.session.execute(
            sa.update(people).where(people.c.id == sa.bindparam("pid")).values(fingerprint=sa.bindparam("fp")),
            [{"pid": pid, "fp": fp} for fp, pid in person_of.items() if pid is not None],
        )
        for new_fingerprint in [fp for fp, pid in person_of.items() if pid is None]:
            person_of[new_fingerprint] = db.session.execute(
                sa.insert(people).values(fingerprint=new_fingerprint).returning(people.c.id)
            ).scalar_one()
            result.people_added += 1

    # Pass 2: write the new values, chunk by chunk.
    c = placements.c
    update = (
        sa.update(placements)
        .where(c.id == sa.bindparam("pid"))
        .values(id_stored=sa.bindparam("stored"), id_fingerprint=sa.bindparam("fp"), person_id=sa.bindparam("person"))
    )
    moved: set[tuple[int, int]] = set()
    for rows in _chunks():
        writes = []
        for row in rows:
            number, how = reader.read(row.id_stored)
            new_fingerprint = idnumbers.keyed_fingerprint(mac_key, number)
            if new_fingerprint not in person_of:
                raise ServiceError("未做任何修改：轮换期间劳务协作记录发生了变化，请停止应用后重试。")
            person_id = person_of[new_fingerprint]
            stored = row.id_stored if how == "new" else reader.new.encrypt(number.encode()).decode()
            result.placements += 1
            result.encrypted += how == "plain"
            result.reencrypted += how == "old"
            result.unchanged += how == "new"
            if person_id != row.person_id:
                moved.add((row.origin_county_id, row.start_date.year))
            if (stored, new_fingerprint, person_id) != (row.id_stored, row.id_fingerprint, row.person_id):
                writes.append({"pid": row.id, "stored": stored, "fp": new_fingerprint, "person": person_id})
        if writes:
            db.session.execute(update, writes)
    if changes:
        # The people merged into another: no placement refers to them any more.
        result.people_removed += db.session.execute(
            sa.delete(people).where(people.c.fingerprint.startswith(PARKED))
        ).rowcount
    if moved:
        refresh_cells(moved)  # the cells hold person ids: a merged person must not count twice
    result.people = db.session.scalar(sa.select(sa.func.count()).select_from(people))
    if changes or result.people_removed or new_key != current_app.config["ID_NUMBER_KEY"]:
        # One event per rotation, or per encryption that found something to do (not for an `encrypt` that
        # found every number already under the key: make db-upgrade runs it every time).
        record("rekey_ids", None, entity_type=placements.name, actor=actor, summary=result.summary)
    db.session.expire_all()  # placements and people in the session were changed behind the ORM's back
    return result


@dataclass
class KeyStatus:
    placements: int = 0
    plain: int = 0
    current: int = 0
    #: Encrypted, but not under the current key (nor any given old key: those count as ``old``).
    unreadable: int = 0
    old: int = 0


def key_status(key: str, old_keys: Iterable[str] = ()) -> KeyStatus:
    """How the stored numbers are held: as typed, under ``key``, under one of ``old_keys``, or under none."""
    reader = _Reader(key, old_keys)
    status = KeyStatus()
    for rows in _chunks():
        for row in rows:
            status.placements += 1
            try:
                _, how = reader.read(row.id_stored)
            except InvalidToken:
                status.unreadable += 1
                continue
            field = {"plain": "plain", "new": "current", "old": "old"}[how]
            setattr(status, field, getattr(status, field) + 1)
    return status


def key_in_use(database_uri: str, instance_path: str) -> Callable[[str], bool | None]:
    """For ``load_id_number_key``: is the database's data encrypted with this key? None when it cannot tell.

    A rotation re-encrypts every number in one transaction, so one encrypted number answers for all of them; no
    encrypted number at all means no rotation was committed (nothing was encrypted with the new key).
    """

    def committed(new_key: str) -> bool | None:
        url = sa.engine.make_url(database_uri)
        if url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:":
            from pathlib import Path

            # Flask-SQLAlchemy resolves relative SQLite paths against the instance folder; so must this.
            url = url.set(database=str(Path(instance_path) / url.database))
        engine = sa.create_engine(url)
        try:
            with engine.connect() as conn:
                if not sa.inspect(conn).has_table("placements"):
                    return False
                stored = conn.execute(
                    sa.text("SELECT id_stored FROM placements WHERE id_stored LIKE :token LIMIT 1"),
                    {"token": TOKEN_PREFIX + "%"},
                ).scalar()
        except sa.exc.SQLAlchemyError:
            return None
        finally:
            engine.dispose()
        if stored is None:
            return False
        try:
            Fernet(new_key).decrypt(stored.encode())
        except InvalidToken:
            return False
        return True

    return committed
