"""Every bench in a small size, as CI runs them: each module of bench/ with ``--smoke``; fails if one breaks.

Usage:
    .venv/bin/python -m bench.smoke                                   # SQLite
    .venv/bin/python -m bench.smoke --sqlite --database-url postgresql+psycopg://postgres@127.0.0.1:5432/test \\
        --database-name bench_smoke                                   # SQLite and PostgreSQL
    [--only report_county load] [--jobs 2] [--timeout 300] [--subprocess]

Every module of this package except this one is a bench (found by listing the folder, so a new bench is run
without editing anything here). Each runs with ``--smoke``, and on PostgreSQL with ``--database-url`` when its
source has that option (a bench without one runs on SQLite only). A bench fails the run when it raises or exits
non-zero, prints no ``FIGURE`` line (``bench.figure``), or outlives ``--timeout`` (then its whole process group is
killed: a server it started stops too). No figure is ever compared with its target here.

Cheap on purpose (``make test`` runs it): the migrations run once per engine and the smoke-size demo is loaded once
per engine, into template databases that the benches copy (``bench.fresh_app`` and ``bench.demo_app`` read
``BENCH_MIGRATED_TEMPLATE`` and ``BENCH_DEMO_TEMPLATE``); each bench runs in a child forked from this process once
it has imported the app and the heavy libraries (WeasyPrint with its fonts, openpyxl…), so no bench pays for
Python and the app starting (``--subprocess``: each in a fresh interpreter instead); ``--jobs`` benches run at
once. Temporary files live in one folder, removed at the end. On PostgreSQL the databases are named after
``--database-name`` (else the URL's): ``<name>_migrated`` and ``<name>_demo`` (the templates) and one per bench,
``<name>_<bench>``, each created (or EMPTIED) by the run and dropped at its end.
"""

import argparse
import os
import pkgutil
import re
import runpy
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import bench
from bench import DEMO_TEMPLATE, MIGRATED_TEMPLATE, parse_figure

ROOT = Path(__file__).resolve().parent.parent
FOLDER = Path(bench.__file__).parent
#: A bench's option for the database it empties and uses (``--database-url-prefix`` is not it).
_DATABASE_URL_OPTION = re.compile(r"""["']--database-url["']""")
#: Benches known to take longest start first, so that the slots end together.
LONGEST_FIRST = ("load", "scale", "report_county", "report_queue")


@dataclass
class Outcome:
    name: str
    engine: str
    seconds: float = 0.0
    #: CPU seconds (user + system) of the bench and of every process it waited for.
    cpu: float = 0.0
    returncode: int | None = None
    output: str = ""
    timed_out: bool = False
    figures: list[dict] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def discover(folder: Path = FOLDER) -> list[str]:
    """The bench modules of ``folder``: every module but this runner and private ones (``_x``), sorted."""
    names = (m.name for m in pkgutil.iter_modules([str(folder)]))
    return sorted(n for n in names if n != "smoke" and not n.startswith("_"))


def takes_database_url(path: Path) -> bool:
    """Whether the bench at ``path`` has a ``--database-url`` option (read from its source, not by running it)."""
    return bool(_DATABASE_URL_OPTION.search(path.read_text(encoding="utf-8")))


def check(outcome: Outcome) -> Outcome:
    """Fill ``outcome.figures`` from its output and ``outcome.problems`` with every reason it fails."""
    outcome.figures = [f for line in outcome.output.splitlines() if (f := parse_figure(line))]
    if outcome.timed_out:
        outcome.problems.append("did not end in time (killed with its process group)")
    elif outcome.returncode != 0:
        outcome.problems.append(f"exited with status {outcome.returncode}")
    if not outcome.figures:
        outcome.problems.append("printed no FIGURE line")
    return outcome


# ---- children --------------------------------------------------------------------------------------------------


def start_child(target: Callable[[], None]) -> tuple[int, int]:
    """Fork a child that calls ``target()`` in its own process group, its stdout and stderr into a pipe; return its
    pid and the pipe's reading end. It exits 0 when ``target`` returns, with a ``SystemExit``'s code, or 1 when it
    raises (the traceback printed)."""
    read, write = os.pipe()
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:  # the child: never returns
        code = 1
        try:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)  # the runner's own handler is not the bench's
            os.setpgid(0, 0)
            os.close(read)
            os.dup2(write, 1)
            os.dup2(write, 2)
            os.close(write)
            # Python's streams on those descriptors (they may have been replaced, e.g. under pytest's capture).
            sys.stdout = open(1, "w", encoding="utf-8", buffering=1, closefd=False)  # noqa: SIM115
            sys.stderr = open(2, "w", encoding="utf-8", buffering=1, closefd=False)  # noqa: SIM115
            target()
            code = 0
        except SystemExit as exc:
            if exc.code is None or isinstance(exc.code, int):
                code = exc.code or 0
            else:
                print(exc.code, file=sys.stderr)
        except BaseException:  # noqa: BLE001 - whatever a bench raises is its failure, printed
            traceback.print_exc()
        finally:
            try:
                sys.stdout.flush()
                sys.stderr.flush()
            finally:
                os._exit(code)
    os.close(write)
    return pid, read


def start_module(module: str, argv: list[str], env: dict, *, forked: bool = True) -> tuple[int, int]:
    """Start ``python -m <module> <argv>`` with ``env`` added: forked from this process (its imports already done),
    or in a fresh interpreter; both in a process group of their own, output into a pipe. Returns (pid, fd)."""
    if forked:

        def target():
            os.environ.update(env)
            tempfile.tempdir = env.get("TMPDIR", tempfile.tempdir)
            sys.argv = [module, *argv]
            runpy.run_module(module, run_name="__main__", alter_sys=True)

        return start_child(target)
    read, write = os.pipe()
    command = [sys.executable, "-m", module, *argv]
    process = subprocess.Popen(command, cwd=ROOT, env=os.environ | env, stdout=write, stderr=write,  # noqa: S603
                               stdin=subprocess.DEVNULL, start_new_session=True)  # fmt: skip
    os.close(write)
    process.returncode = 0  # reaped by Running, not by Popen
    return process.pid, read


def _kill_group(pgid: int) -> None:
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


class Running:
    """A started child: its output read as it comes; once it has exited, whatever is left of its process group (a
    server it did not stop, which would also hold the pipe open) is killed; after ``timeout`` the whole group."""

    def __init__(self, pid: int, fd: int, timeout: float):
        self.pid, self.fd = pid, fd
        self.started = time.perf_counter()
        self.deadline = time.monotonic() + timeout
        self.chunks: list[bytes] = []
        self.status: int | None = None
        self.cpu = 0.0
        self.timed_out = self.closed = False

    def _reap(self, flags: int) -> None:
        pid, status, usage = os.wait4(self.pid, flags)
        if pid:
            self.status, self.cpu = status, usage.ru_utime + usage.ru_stime
            _kill_group(self.pid)

    def step(self, readable: bool) -> bool:
        """Read what is there, reap and kill as due; True once the child is over and its output read."""
        if readable:
            data = os.read(self.fd, 65536)
            if data:
                self.chunks.append(data)
            else:
                self.closed = True
        if self.status is None:
            self._reap(os.WNOHANG)
        if not self.closed and time.monotonic() > self.deadline:
            self.timed_out = self.closed = True
            _kill_group(self.pid)
        if self.closed:
            os.close(self.fd)
            if self.status is None:
                self._reap(0)
        return self.closed

    @property
    def output(self) -> str:
        return b"".join(self.chunks).decode("utf-8", "replace")

    @property
    def returncode(self) -> int | None:
        return None if self.status is None else os.waitstatus_to_exitcode(self.status)


def wait(running: list[Running], timeout: float = 0.5) -> list[Running]:
    """Step every child once (waiting up to ``timeout`` for output); the ones that are over."""
    ready, _, _ = select.select([r.fd for r in running], [], [], timeout)
    return [r for r in running if r.step(r.fd in ready)]


def run_bench(name: str, engine: str, argv: list[str], env: dict, timeout: float, *, package: str = "bench",
              fork: bool = True) -> Outcome:  # fmt: skip
    """Run one bench to its end (alone) and check it."""
    child = Running(*start_module(f"{package}.{name}", argv, env, forked=fork), timeout)
    while not wait([child]):
        pass
    return check(Outcome(name, engine, time.perf_counter() - child.started, child.cpu, child.returncode,
                         child.output, child.timed_out))  # fmt: skip


# ---- templates -------------------------------------------------------------------------------------------------


def _admin(url: str):
    import sqlalchemy as sa

    return sa.create_engine(sa.engine.make_url(url).set(database="postgres"), isolation_level="AUTOCOMMIT")


def _create_if_missing(url: str) -> None:
    import sqlalchemy as sa

    name = sa.engine.make_url(url).database
    admin = _admin(url)
    with admin.connect() as conn:
        if not conn.exec_driver_sql("SELECT 1 FROM pg_database WHERE datname = %(n)s", {"n": name}).scalar():
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    admin.dispose()


def _drop(urls: list[str]) -> None:
    import sqlalchemy as sa

    admin = _admin(urls[0])
    with admin.connect() as conn:
        for url in urls:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{sa.engine.make_url(url).database}" WITH (FORCE)')
    admin.dispose()


def bench_url(url: str, name: str) -> str:
    """The PostgreSQL database of one bench, ``<database>_<bench>`` (the benches run side by side)."""
    import sqlalchemy as sa

    base = sa.engine.make_url(url)
    return base.set(database=f"{base.database}_{name}").render_as_string(hide_password=False)


def template_urls(engine: str, url: str | None, folder: Path) -> dict:
    """The environment naming ``engine``'s two templates (a migrated schema; the smoke-size demo on it)."""
    import sqlalchemy as sa

    if engine == "sqlite":
        return {MIGRATED_TEMPLATE: f"sqlite:///{folder / 'migrated.sqlite3'}",
                DEMO_TEMPLATE: f"sqlite:///{folder / 'demo.sqlite3'}"}  # fmt: skip
    base = sa.engine.make_url(url)
    return {
        variable: base.set(database=f"{base.database}_{suffix}").render_as_string(hide_password=False)
        for variable, suffix in ((MIGRATED_TEMPLATE, "migrated"), (DEMO_TEMPLATE, "demo"))
    }


def build_templates(engine: str, url: str | None, env: dict) -> None:
    """Build the templates (in a child: ``bench.fresh_app`` and ``bench.load_demo`` as a bench would run them)."""
    for variable in (MIGRATED_TEMPLATE, DEMO_TEMPLATE):
        os.environ.pop(variable, None)
    migrated, demo = env[MIGRATED_TEMPLATE], env[DEMO_TEMPLATE]
    if engine == "postgresql":
        _create_if_missing(migrated)
    started = time.perf_counter()
    bench.dispose(bench.fresh_app(migrated, "migrated"))
    print(f"migrated schema in {time.perf_counter() - started:.1f} s")
    started = time.perf_counter()
    app = bench.bench_app(bench.copy_database(migrated, demo, "demo"))
    with app.app_context():
        bench.load_demo(smoke=True)
    bench.dispose(app)
    print(f"smoke-size demo loaded in {time.perf_counter() - started:.1f} s")


# ---- the run ---------------------------------------------------------------------------------------------------


def preload() -> None:
    """Import what the benches import, and set WeasyPrint's fonts up, once, before any child is forked (no
    database connection or thread is left open here)."""
    import flask_migrate  # noqa: F401
    import openpyxl  # noqa: F401
    import pypdf  # noqa: F401

    from registry import create_app
    from registry.reports.pdf import render_pdf

    app = create_app({"SQLALCHEMY_DATABASE_URI": "sqlite://", **bench.BENCH_CONFIG})  # imports every blueprint
    render_pdf('<html lang="zh-CN"><body><p>东西部协作 2024</p></body></html>', static_dir=app.static_folder)


@dataclass
class Job:
    name: str
    engine: str
    start: Callable[[], tuple[int, int]]
    needs: str | None = None  # a job that must have passed first


def plan(engines: list, names: list[str], folder: Path, forked: bool) -> tuple[list[Job], list[str]]:
    """The jobs: each engine's templates, then every bench on it (longest first); and the benches left out."""
    templates, benches, skipped = [], [], []
    order = sorted(names, key=lambda n: (LONGEST_FIRST.index(n) if n in LONGEST_FIRST else len(LONGEST_FIRST), n))
    for engine, url in engines:
        env = {"TMPDIR": str(folder), "PYTHONUNBUFFERED": "1"} | template_urls(engine, url, folder)
        templates.append(Job("templates", engine, lambda e=engine, u=url, v=env: start_child(
            lambda: build_templates(e, u, v))))  # fmt: skip
        for name in order:
            argv = ["--smoke"]
            if engine == "postgresql":
                if not takes_database_url(FOLDER / f"{name}.py"):
                    skipped.append(f"bench.{name} on {engine} (no --database-url: it runs on SQLite only)")
                    continue
                argv += ["--database-url", bench_url(url, name)]
            start = lambda n=name, a=argv, v=env: start_module(f"bench.{n}", a, v, forked=forked)  # noqa: E731
            benches.append(Job(name, engine, start, needs=engine))
    # PostgreSQL's first: they are slower (the server's work besides), and start after the longer templates.
    by_engine = sorted(templates + benches, key=lambda job: (job.name != "templates", job.engine != "postgresql"))
    return by_engine, skipped


def report(job: Job, outcome: Outcome) -> None:
    verdict = "ok" if not outcome.problems else "FAILED: " + "; ".join(outcome.problems)
    count = f", {len(outcome.figures)} figures" if job.name != "templates" else ""
    print(f"-- {job.name} on {job.engine}: {outcome.seconds:.1f} s (CPU {outcome.cpu:.1f} s){count}, {verdict}")
    if outcome.problems:
        shown = outcome.output
    else:
        shown = "\n".join(line for line in outcome.output.splitlines() if line.startswith(("FIGURE", "smoke-", "mig")))
    if shown.strip():
        print("   " + shown.strip().replace("\n", "\n   "), flush=True)


def run(jobs: list[Job], slots: int, timeout: float) -> list[Outcome]:
    """Run the jobs, ``slots`` at a time, each when what it needs has passed; a job whose templates failed fails."""
    pending, running, passed, outcomes = list(jobs), {}, set(), []
    try:
        _run(pending, running, passed, outcomes, slots, timeout)
    except BaseException:  # interrupted (Ctrl-C, SIGTERM): the children's process groups go too
        for child in running:
            _kill_group(child.pid)
        raise
    return outcomes


def _run(pending: list[Job], running: dict, passed: set, outcomes: list, slots: int, timeout: float) -> None:
    while pending or running:
        for job in list(pending):
            if len(running) >= slots:
                break
            if job.needs and job.needs not in passed:
                if any(o.name == "templates" and o.engine == job.needs and o.problems for o in outcomes):
                    pending.remove(job)
                    outcomes.append(Outcome(job.name, job.engine, problems=["not run: the templates failed"]))
                continue
            pending.remove(job)
            child = Running(*job.start(), timeout)
            running[child] = job
        if not running:
            continue
        for child in wait(list(running)):
            job = running.pop(child)
            outcome = Outcome(job.name, job.engine, time.perf_counter() - child.started, child.cpu, child.returncode,
                              child.output, child.timed_out)  # fmt: skip
            if job.name == "templates":
                outcome.problems = ["did not end in time"] if child.timed_out else (
                    [f"exited with status {child.returncode}"] if child.returncode else [])  # fmt: skip
                if not outcome.problems:
                    passed.add(job.engine)
            else:
                check(outcome)
            report(job, outcome)
            outcomes.append(outcome)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", help="PostgreSQL to run the benches on (see --database-name)")
    parser.add_argument("--database-name", help="the prefix of the databases it makes (default: the URL's)")
    parser.add_argument("--sqlite", action="store_true", help="with --database-url: on SQLite too")
    parser.add_argument("--only", nargs="+", metavar="NAME", help="these benches only (default: every one)")
    parser.add_argument("--jobs", type=int, default=2, help="benches run at once (default 2)")
    parser.add_argument("--timeout", type=float, default=300, help="seconds a bench may take (default 300)")
    parser.add_argument("--subprocess", action="store_true", help="each bench in a fresh interpreter, not forked")
    args = parser.parse_args(argv)
    url = args.database_url
    if url and args.database_name:
        import sqlalchemy as sa

        url = sa.engine.make_url(url).set(database=args.database_name).render_as_string(hide_password=False)
    engines = ([("sqlite", None)] if args.sqlite or not url else []) + ([("postgresql", url)] if url else [])
    names = discover()
    unknown = set(args.only or []) - set(names)
    if unknown:
        parser.error(f"no such bench: {', '.join(sorted(unknown))} (benches: {', '.join(names)})")
    names = args.only or names
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))  # children killed on the way out
    started = time.perf_counter()
    preload()
    print(f"== bench.smoke: {', '.join(names)} on {' and '.join(e for e, _ in engines)}, {args.jobs} at a time "
          f"({time.perf_counter() - started:.1f} s to import the app)", flush=True)  # fmt: skip
    folder = Path(tempfile.mkdtemp(prefix="bench-smoke-"))
    jobs, skipped = plan(engines, names, folder, forked=not args.subprocess)
    for line in skipped:
        print(f"-- skipped: {line}")
    try:
        outcomes = run(jobs, max(1, args.jobs), args.timeout)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
        for engine, engine_url in engines:
            if engine == "postgresql":
                env = template_urls(engine, engine_url, folder)
                try:
                    _drop([env[MIGRATED_TEMPLATE], env[DEMO_TEMPLATE], *(bench_url(engine_url, n) for n in names)])
                except Exception as exc:  # noqa: BLE001 - the run's own outcome matters more
                    print(f"bench.smoke: the PostgreSQL templates were not dropped: {exc}", file=sys.stderr)
    wall = time.perf_counter() - started
    failed = [o for o in outcomes if o.problems]
    runs = [o for o in outcomes if o.name != "templates"]
    cpu = sum(o.cpu for o in outcomes)
    if failed:
        for o in failed:
            print(f"BENCH FAILED: bench.{o.name} on {o.engine}: {'; '.join(o.problems)}", file=sys.stderr)
        print(f"== bench.smoke: {len(failed)} failed, in {wall:.1f} s", file=sys.stderr)
        return 1
    print(f"== bench.smoke: {len(runs)} runs of {len(names)} benches passed in {wall:.1f} s (CPU of the children "
          f"{cpu:.1f} s); figures printed, never compared with their targets here")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
