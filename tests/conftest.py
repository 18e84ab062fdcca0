"""Fixtures: one app per session on SQLite or PostgreSQL (REGISTRY_TEST_DATABASE_URL), schema from migrations,
every table emptied after each test, and helpers to build data and log in."""

import functools
import os
import shutil
import uuid
from types import SimpleNamespace

import pytest
import sqlalchemy as sa
from flask_migrate import upgrade

from registry import create_app
from registry.kernel.extensions import db
from registry.kernel.search import SEARCHED, fts_table
from tests.factories import PASSWORD, World

TEST_DATABASE_URL = os.environ.get("REGISTRY_TEST_DATABASE_URL")
TEST_ID_NUMBER_KEY = "Y3CMx8f3nJeOSkU0qYbfHBP9xVh0jY5v1YQ3b8CqfUk="


def make_test_config(database_url: str) -> dict:
    return {
        "TESTING": True,
        "SECRET_KEY": "test-secret",
        "SQLALCHEMY_DATABASE_URI": database_url,
        "WTF_CSRF_ENABLED": False,
        # Cheap hashing keeps the suite fast; production parameters are tested in test_auth.
        "ARGON2_TIME_COST": 1,
        "ARGON2_MEMORY_COST": 1024,
        "ARGON2_PARALLELISM": 1,
        "SERVER_NAME": None,
        # A fixed identity-number key: the suite never writes one into the repository's instance/ folder.
        "ID_NUMBER_KEY": TEST_ID_NUMBER_KEY,
        # Tasks are queued in memory unless a test runs a consumer (tests/test_tasks*.py).
        "TASKS_QUEUE_URL": "memory://",
        # PDFs are rendered in the test's own process: the same code the pool runs (documents.report_pdf), without
        # spawning two render processes per test process and engine, each importing the app and parsing fonts and
        # the stylesheet cold (~6 s of CPU each). tests/test_report_cache.py runs the pool itself (a timeout, 503).
        "REPORT_PDF_WORKERS": 0,
    } | engine_options(database_url)


def engine_options(database_url: str) -> dict:
    """PostgreSQL under test does not wait for the disk at each commit (synchronous_commit=off only delays
    durability, never visibility or constraints): the suite commits once per request, thousands of times."""
    if not database_url.startswith("postgresql"):
        return {}
    return {
        "SQLALCHEMY_ENGINE_OPTIONS": {
            "pool_pre_ping": True,
            "connect_args": {"options": "-c synchronous_commit=off"},
        }
    }


def drop_everything(engine):
    """Drop every table, including ones the current models no longer know (and alembic_version)."""
    meta = sa.MetaData()
    meta.reflect(bind=engine)
    meta.drop_all(bind=engine)


def worker_database(url: str) -> str:
    """Under pytest-xdist each worker process gets its own PostgreSQL database (``test_gw0``…), created afresh, so
    parallel workers never see each other's rows; SQLite files live in each worker's own temporary folder."""
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if not worker:
        return url
    base = sa.engine.make_url(url)
    name = f"{base.database}_{worker}"
    admin = sa.create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    admin.dispose()
    return base.set(database=name).render_as_string(hide_password=False)


#: The fixtures that reach the database under test. A test that asks for none of them, directly or through its
#: other fixtures, runs the very same code on either engine (periods, money, parsing, the layering, …): it is
#: marked ``no_database`` and the PostgreSQL run of ``make test`` leaves it out (``-m "not no_database"``) instead
#: of running it a second time.
DATABASE_FIXTURES = frozenset({"app", "database_url", "empty_database", "demo_database"})


def pytest_collection_modifyitems(items):
    for item in items:
        if not DATABASE_FIXTURES.intersection(item.fixturenames) and not item.get_closest_marker("postgres_only"):
            item.add_marker(pytest.mark.no_database)


@pytest.fixture(scope="session")
def database_url(tmp_path_factory):
    if TEST_DATABASE_URL:
        return worker_database(TEST_DATABASE_URL)
    return f"sqlite:///{tmp_path_factory.mktemp('db') / 'test.sqlite3'}"


@pytest.fixture(scope="session")
def app(database_url, tmp_path_factory):
    files = tmp_path_factory.mktemp("instance")
    app = create_app(
        make_test_config(database_url)
        | {"TASKS_FOLDER": str(files / "jobs"), "BACKUP_FOLDER": str(files / "backups")}
        | {"EVIDENCE_FOLDER": str(files / "evidence")}
    )
    with app.app_context():
        drop_everything(db.engine)
        upgrade()
    yield app
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


#: Reference rows the migrations insert; tests keep them and delete only what they added.
KEEP = {"indicators": "is_builtin = false", "channels": "is_builtin = false"}


def empty_tables():
    """Delete every row but the migrations' reference rows; faster than rebuilding the schema for each test.

    On PostgreSQL, every table is emptied in one round trip and every id sequence starts again at 1 (TRUNCATE of
    every table cost ~0.15 s per test); on SQLite, one query finds the tables that hold rows (most tests touch a
    few) and only those are emptied, children first."""
    engine = db.engine
    if engine.dialect.name == "postgresql":
        # One round trip: a DELETE of an empty table costs the server next to nothing, a round trip does not.
        with engine.begin() as conn:
            off = _without_triggers(conn)
            conn.exec_driver_sql(off + _pg_empty_all() + (_pg_search_tables("empty") if off else ""))
        return
    tables = list(reversed(db.metadata.sorted_tables))
    exists = " UNION ALL ".join(
        f"SELECT '{t.name}' WHERE EXISTS (SELECT 1 FROM {t.name} WHERE {KEEP.get(t.name, 'true')})" for t in tables
    )
    with engine.begin() as conn:
        full = {row[0] for row in conn.exec_driver_sql(exists)}
        if "fund_transactions" in full:
            conn.exec_driver_sql(_LEDGER_FIRST)
        for table in tables:
            if table.name in full:
                where = KEEP.get(table.name)
                conn.execute(table.delete().where(sa.text(where)) if where else table.delete())


def _without_triggers(conn) -> str:
    """``SET LOCAL session_replication_role = replica`` where the suite's role may (a superuser, as CI's
    ``postgres``): for the rest of the transaction the server runs no trigger, so emptying every table or putting
    a snapshot back skips the foreign-key checks row by row and the ledger's constraint trigger (measured: ~45 ms
    of the server's time less per test that restores the world). Those checks can find nothing there: every row
    goes, or rows come back as the services wrote them. Nowhere else in the suite are triggers turned off."""
    if _SUPERUSER.get(conn.engine.url) is None:
        _SUPERUSER[conn.engine.url] = conn.exec_driver_sql("SELECT current_setting('is_superuser')").scalar() == "on"
    return "SET LOCAL session_replication_role = replica; " if _SUPERUSER[conn.engine.url] else ""


_SUPERUSER: dict = {}


def _pg_search_tables(what: str) -> str:
    """With triggers off, the keyword index's statement triggers (``registry.kernel.search``) neither queue restored
    records nor forget deleted ones: after emptying, its tables are emptied too; after a restore, every restored
    record of a searched table is queued (a search reads the queue as candidates), as the triggers would have."""
    statements = []
    for table in SEARCHED:
        name = fts_table(table)
        if what == "empty":
            statements += [f"DELETE FROM {name}", f"DELETE FROM {name}_pending"]
        else:
            statements.append(f"INSERT INTO {name}_pending (id) SELECT id FROM {table} ON CONFLICT DO NOTHING")
    return "; " + "; ".join(statements)


#: The ledger rule (拨付 ≤ 到位) is checked row by row: a ledger is emptied 拨付 first.
_LEDGER_FIRST = "DELETE FROM fund_transactions WHERE stage = 'disbursed'"


@functools.cache
def _pg_empty_all() -> str:
    """Every table emptied, children first, then every id sequence back to 1 (not only the emptied tables': a
    rolled-back insert consumes ids too, and tests count on ids from 1 as TRUNCATE … RESTART IDENTITY gave them)."""
    deletes = [
        f"DELETE FROM {t.name}" + (f" WHERE {KEEP[t.name]}" if t.name in KEEP else "")
        for t in reversed(db.metadata.sorted_tables)
    ]
    restart = [
        f"setval(pg_get_serial_sequence('{t.name}', 'id'), 1, false)"
        for t in db.metadata.sorted_tables
        if t.name not in KEEP and _serial_id(t)
    ]
    return "; ".join([_LEDGER_FIRST, *deletes, "SELECT " + ", ".join(restart)])


def _serial_id(table) -> bool:
    column = table.c.get("id")
    return column is not None and column.primary_key and isinstance(column.type, sa.Integer)


@pytest.fixture(autouse=True)
def _clean(request):
    """Every test that reaches the database leaves it empty, but for tests that only read (``read_world``): the
    world they share stays until a test that does not share it starts."""
    uses_app, reads = "app" in request.fixturenames, "read_world" in request.fixturenames
    if uses_app and not reads and _READ.ids is not None:
        _READ.leave(request.getfixturevalue("app"))
    yield
    if not uses_app:
        return
    app = request.getfixturevalue("app")
    if reads:
        _READ.check(app)
        return
    with app.app_context():
        db.session.remove()
        empty_tables()


@pytest.fixture
def empty_database(tmp_path):
    """A brand-new database on the engine under test (a throwaway PostgreSQL database, or a SQLite file), for
    tests that run the migrations themselves."""
    if not TEST_DATABASE_URL:
        yield f"sqlite:///{tmp_path / 'migrations.sqlite3'}"
        return
    name = f"registry_migrations_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(TEST_DATABASE_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    yield sa.engine.make_url(TEST_DATABASE_URL).set(database=name).render_as_string(hide_password=False)
    with admin.connect() as conn:
        conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin.dispose()


class DemoDatabase:
    """The demo (``flask demo load``), loaded once per test process into a database of its own; each module that
    needs it takes a copy (``CREATE DATABASE … TEMPLATE`` on PostgreSQL, a file copy on SQLite), so a test may add
    records to its copy. Loading takes most of a minute (every record through its service); a copy, a second."""

    def __init__(self, base_url: str, folder):
        self.base_url, self.folder = base_url, folder
        self.url = self._new_url("demo")
        app = create_app(self.config(self.url))
        with app.app_context():
            drop_everything(db.engine)
            upgrade()
        result = app.test_cli_runner().invoke(args=["demo", "load"])
        assert result.exit_code == 0, result.output
        #: What the first load printed (the logins), for the test of the command itself.
        self.output = result.output
        with app.app_context():
            db.session.remove()
            db.engine.dispose()
        self.copies = 0

    def config(self, url: str) -> dict:
        folders = {"TASKS_FOLDER": "jobs", "BACKUP_FOLDER": "backups", "EVIDENCE_FOLDER": "evidence"}
        return make_test_config(url) | {key: str(self.folder / name) for key, name in folders.items()}

    def _new_url(self, suffix: str, template: str | None = None) -> str:
        if not TEST_DATABASE_URL:
            path = self.folder / f"{suffix}.sqlite3"
            if template:
                shutil.copyfile(sa.engine.make_url(template).database, path)
            return f"sqlite:///{path}"
        base = sa.engine.make_url(self.base_url)
        name = f"{base.database}_{suffix}"
        admin = sa.create_engine(TEST_DATABASE_URL, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            source = f' TEMPLATE "{sa.engine.make_url(template).database}"' if template else ""
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"{source}')
        admin.dispose()
        return base.set(database=name).render_as_string(hide_password=False)

    def copy(self) -> str:
        """A new database holding the loaded demo."""
        self.copies += 1
        return self._new_url(f"demo{self.copies}", template=self.url)

    @staticmethod
    def drop(url: str) -> None:
        if TEST_DATABASE_URL:
            admin = sa.create_engine(TEST_DATABASE_URL, isolation_level="AUTOCOMMIT")
            with admin.connect() as conn:
                conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{sa.engine.make_url(url).database}" WITH (FORCE)')
            admin.dispose()


@pytest.fixture(scope="session")
def demo_database(database_url, tmp_path_factory):
    """The loaded demo; modules using it are one xdist group (``xdist_group("demo")``), so one process loads it."""
    database = DemoDatabase(database_url, tmp_path_factory.mktemp("demo"))
    yield database
    DemoDatabase.drop(database.url)


@pytest.fixture(scope="module")
def demo_app(demo_database):
    """An app on this module's own copy of the loaded demo."""
    url = demo_database.copy()
    app = create_app(demo_database.config(url))
    yield app
    with app.app_context():
        db.session.remove()
        db.engine.dispose()
    DemoDatabase.drop(url)


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


@pytest.fixture
def ctx(app):
    """An application context for service-level tests; the session is rolled back afterwards."""
    with app.app_context():
        yield
        db.session.rollback()


class Snapshot:
    """A set of records built once per test process through the services, kept as its rows, and put back for each
    test that asks for it (``restore``); ``empty_tables`` after each test removes them again.

    Building the standard world takes about half a second (every record through its service, with audit) and most
    of the suite's tests start from it; putting its rows back takes a few multi-row INSERTs, or on PostgreSQL one
    round trip from a schema of its own (~60 statements each waiting for the server cost ~30 ms a test). Ids come
    back the same, as they did when the world was rebuilt.

    ``build`` runs in an application context on the empty database and returns the ids the tests use.
    """

    def __init__(self, app, name: str, build):
        self.app, self.schema = app, f"snapshot_{name}"
        with app.app_context():
            self.ids = build()
            db.session.commit()
            self.rows = []
            with db.engine.connect() as conn:
                for table in db.metadata.sorted_tables:
                    stmt = table.select().order_by(*table.primary_key.columns)
                    if table.name in KEEP:
                        stmt = stmt.where(sa.text(KEEP[table.name]))
                    data = [dict(r._mapping) for r in conn.execute(stmt)]
                    if data:
                        self.rows.append((table, data))
            self.tables = [table for table, _ in self.rows]
            if db.engine.dialect.name == "postgresql":
                with db.engine.begin() as conn:
                    conn.exec_driver_sql(self._pg_snapshot())
            db.session.remove()
            empty_tables()

    def restore(self) -> SimpleNamespace:
        """Put the rows back (committed) and return a copy of the ids."""
        with self.app.app_context():
            with db.engine.begin() as conn:
                if db.engine.dialect.name == "postgresql":
                    off = _without_triggers(conn)
                    conn.exec_driver_sql(off + self._pg_restore() + (_pg_search_tables("queue") if off else ""))
                else:
                    # Parents before children (sorted_tables), each table in id order: the rows go back as the
                    # services wrote them, so the fund ledger's row-by-row rule (拨付 ≤ 到位) holds on the way in
                    # too. (SQLite takes the next id from max(id); there is no sequence to move.)
                    for table, data in self.rows:
                        conn.execute(table.insert(), data)
        return SimpleNamespace(**vars(self.ids))

    def _pg_snapshot(self) -> str:
        copies = [
            f"CREATE TABLE {self.schema}.{t.name} AS SELECT * FROM public.{t.name}"
            + (f" WHERE {KEEP[t.name]}" if t.name in KEEP else "")
            for t in self.tables
        ]
        return "; ".join([f"DROP SCHEMA IF EXISTS {self.schema} CASCADE", f"CREATE SCHEMA {self.schema}", *copies])

    def _pg_restore(self) -> str:
        """Parents first and each table in id order, then the id sequences of those tables moved past the rows."""
        inserts = [
            f"INSERT INTO public.{t.name} SELECT * FROM {self.schema}.{t.name} ORDER BY "
            + ", ".join(c.name for c in t.primary_key.columns)
            for t in self.tables
        ]
        moves = [
            f"setval(pg_get_serial_sequence('{t.name}', 'id'), (SELECT MAX(id) FROM public.{t.name}) + 1, false)"
            for t in self.tables
            if _serial_id(t)
        ]
        return "; ".join([*inserts, "SELECT " + ", ".join(moves)])


def record_ids(records) -> SimpleNamespace:
    """The ids of a world's records (its attributes that have one), for requests and later sessions."""
    db.session.flush()
    return SimpleNamespace(**{k: v.id for k, v in vars(records).items() if hasattr(v, "id")})


#: The model of each record of the standard world, by attribute (for ``world_records``).
WORLD_MODELS: dict[str, type] = {}


def _build_world() -> SimpleNamespace:
    world = World()
    WORLD_MODELS.update({k: type(v) for k, v in vars(world).items() if hasattr(v, "id")})
    return record_ids(world)


@pytest.fixture(scope="session")
def world_snapshot(app):
    """The standard two-province world (see factories.World), built once per test process."""
    return Snapshot(app, "world", _build_world)


@pytest.fixture
def world(world_snapshot):
    """The standard two-province world, committed; returns the ids."""
    return world_snapshot.restore()


@pytest.fixture
def world_records(world_snapshot, ctx):
    """The standard world as records of this test's session (what ``World()`` returns), put back from its rows
    instead of built again through the services (about 0.3 s a test)."""
    ids = world_snapshot.restore()
    return SimpleNamespace(**{name: db.session.get(WORLD_MODELS[name], getattr(ids, name)) for name in WORLD_MODELS})


class ReadWorld:
    """The standard world shared by consecutive tests that only read (GET pages, anonymous requests) in one test
    process: restored once, with one client per role logged in once, instead of restored, logged into and emptied
    for each of them (the authorization matrix alone has a thousand such cases; on PostgreSQL each restore and
    emptying is a round trip of a hundred statements).

    A test asking for ``read_world`` must write nothing: after each, the data versions (``registry.kernel.versions``,
    bumped by every write through the gate or the audit trail) are compared with the restored world's, and a test
    that wrote fails and the world is emptied. The first test that does not share it empties the database first.
    """

    def __init__(self):
        self.ids, self.clients, self.versions, self.app = None, {}, None, None

    def enter(self, app, snapshot) -> "ReadWorld":
        if self.ids is None:
            self.app, self.ids, self.clients = app, snapshot.restore(), {}
            self.versions = self._versions(app)
        return self

    def client(self, role: str):
        """A client logged in as the world's user of ``role`` (the same one for every shared test)."""
        if role not in self.clients:
            client = self.app.test_client()
            response = login(client, role)
            assert response.status_code in (302, 303), response.data.decode()[:500]
            self.clients[role] = client
        return self.clients[role]

    def check(self, app) -> None:
        if self.ids is None:  # already left (the test itself checked)
            return
        versions = self._versions(app)
        if versions != self.versions:
            self.leave(app)
            pytest.fail(f"a test sharing the read-only world wrote (data versions {self.versions} -> {versions})")

    def leave(self, app) -> None:
        self.ids, self.clients, self.versions = None, {}, None
        with app.app_context():
            db.session.remove()
            empty_tables()

    @staticmethod
    def _versions(app):
        with app.app_context(), db.engine.connect() as conn:
            return tuple(conn.exec_driver_sql("SELECT COUNT(*), COALESCE(SUM(version), 0) FROM data_versions").one())


_READ = ReadWorld()


@pytest.fixture
def read_world(app, world_snapshot) -> ReadWorld:
    """The standard world for a test that only reads: ``.ids`` as ``world`` gives them, ``.client(role)``."""
    return _READ.enter(app, world_snapshot)


def login(client, username, password=PASSWORD):
    """Log in through the real form; returns the response."""
    return client.post("/login", data={"username": username, "password": password})


@pytest.fixture
def as_user(app, world):
    """Return a fresh client logged in as one of the world's users, by role name."""

    def _as(name):
        client = app.test_client()
        response = login(client, name)
        assert response.status_code in (302, 303), response.data.decode()[:500]
        return client

    return _as


@pytest.fixture(scope="session")
def signing_files(tmp_path_factory):
    """One self-signed certificate for the session, outside the repository's instance/ folder."""
    from registry.closing import signing  # deferred: only the quarter close's tests sign

    folder = tmp_path_factory.mktemp("signing")
    signing.generate_self_signed(folder / "signing.p12", folder / "signing.pass", "测试协作办")
    return folder / "signing.p12", (folder / "signing.pass").read_text()


@pytest.fixture
def signing_key(app, signing_files, monkeypatch):
    """The app signs approved reports with the session's certificate (``pytestmark = usefixtures("signing_key")``)."""
    monkeypatch.setitem(app.config, "SIGNING_PKCS12", str(signing_files[0]))
    monkeypatch.setitem(app.config, "SIGNING_PASSPHRASE", signing_files[1])
