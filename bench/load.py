"""Load and fault harness: gunicorn on loopback, concurrent readers and writers, a killed import, then invariants.

Usage:
    .venv/bin/python -m bench.load [--database-url URL] [--workers 2] [--threads 4] [--concurrency 8]
        [--requests 480] [--pdfs 4] [--disbursements 8] [--overlap-rows 300] [--smoke]

The database (a new SQLite file under /tmp when no URL is given) is EMPTIED, migrated and loaded with the demo
data; then gunicorn (``--workers`` processes of ``--threads`` threads) serves it on 127.0.0.1 only, and:

1. reads: ``--concurrency`` threads share ``--requests`` GETs of the project, placement and purchase lists and a
   county's quarterly dashboard, as the province office, the county office and an East liaison (scopes differ);
   targets for the dashboard: p50 < 100 ms and p99 < 300 ms;
2. PDFs: ``--pdfs`` reports of different counties at once, while /healthz is asked every 20 ms; target: /healthz
   under 50 ms throughout;
3. 拨付: ``--disbursements`` simultaneous POSTs on one project, each a fifth of what is left of its 到位 — five may
   pass;
4. two overlapping imports of ``--overlap-rows`` placements each (half of their rows the same people, counties and
   start dates);
5. ``kill -9`` of every gunicorn worker while a 4,000-row import is being checked: nothing of it may remain;

and checks afterwards, from the data whatever enforces them: 拨付 ≤ 到位 per project and source; fund totals,
placement cells and purchase totals equal to the records they summarise; no two placements with one natural key
(person, county, start date). It prints req/s, p50, p99 and errors per kind of request, and each invariant.
Everything is bounded: a fixed number of requests, 60 s per request at most, the server stopped at the end.
``--smoke``: the smaller demo, one worker of 2 threads, 2 clients, 8 GETs, 1 PDF, 3 拨付, imports of 20 rows, and
still the kill -9 (seconds, figures not targets).
"""

import argparse
import csv
import io
import os
import random
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import date, timedelta
from http.cookiejar import CookieJar
from pathlib import Path

import sqlalchemy as sa

from bench import demo_app, figure, parse_args

ROOT = Path(__file__).resolve().parent.parent
PASSWORD = "xiezuo-demo-2026"
TIMEOUT = 60
#: Imported placements start last year: in the past whatever today is.
YEAR = date.today().year - 1
#: Server settings for the run: cheap password hashing (logins are not what is measured).
SERVER_ENV = {"REGISTRY_SECRET_KEY": "bench-load", "REGISTRY_ARGON2_MEMORY_COST": "1024",
              "REGISTRY_ARGON2_TIME_COST": "1", "REGISTRY_ARGON2_PARALLELISM": "1"}  # fmt: skip


# ---- a browser-like client ------------------------------------------------------------------------------------


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


class Client:
    """Cookies, CSRF tokens scraped from forms, no redirects followed; every answer is (status, body, seconds)."""

    def __init__(self, base: str):
        self.base = base
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(CookieJar()), _NoRedirect)

    def request(self, path: str, data: bytes | None = None, headers: dict | None = None, stream=None):
        req = urllib.request.Request(self.base + path, data=data, headers=headers or {})
        started = time.perf_counter()
        try:
            with self.opener.open(req, timeout=TIMEOUT) as response:
                body = stream(response) if stream else response.read()
                return response.status, body, time.perf_counter() - started
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read(), time.perf_counter() - started

    def token(self, path: str) -> str:
        status, body, _ = self.request(path)
        match = re.search(rb'name="csrf_token"[^>]*value="([^"]+)"', body) or re.search(
            rb'value="([^"]+)"[^>]*name="csrf_token"', body
        )
        if not match:
            raise RuntimeError(f"no CSRF token on {path} ({status})")
        return match.group(1).decode()

    def post(self, path: str, fields: dict, form_page: str):
        fields = {"csrf_token": self.token(form_page), **fields}
        data = urllib.parse.urlencode(fields).encode()
        return self.request(path, data, {"Content-Type": "application/x-www-form-urlencoded"})

    def upload(self, path: str, filename: str, content: bytes, stream=None):
        boundary = uuid.uuid4().hex
        token = self.token(path)
        body = (
            (
                f'--{boundary}\r\nContent-Disposition: form-data; name="csrf_token"\r\n\r\n{token}\r\n'
                f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{filename}"\r\n'
                "Content-Type: text/csv\r\n\r\n"
            ).encode()
            + content
            + f"\r\n--{boundary}--\r\n".encode()
        )
        return self.request(path, body, {"Content-Type": f"multipart/form-data; boundary={boundary}"}, stream)

    def login(self, username: str) -> "Client":
        status, _, _ = self.post("/login", {"username": username, "password": PASSWORD}, "/login")
        if status not in (302, 303):
            raise RuntimeError(f"login of {username} answered {status}")
        return self


# ---- the server ------------------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, url: str, workers: int, threads: int, log: Path):
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        env = os.environ | SERVER_ENV | {"DATABASE_URL": url}
        command = [sys.executable, "-m", "gunicorn", "-w", str(workers), "--threads", str(threads), "-b",
                   f"127.0.0.1:{self.port}", "--timeout", "120", "--graceful-timeout", "10", "wsgi:app"]  # fmt: skip
        self.log = log.open("wb")
        self.process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=self.log, stderr=subprocess.STDOUT)
        self.wait_ready()

    def wait_ready(self, seconds: float = 60) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"gunicorn exited with {self.process.returncode}; see {self.log.name}")
            try:
                with urllib.request.urlopen(self.base + "/healthz", timeout=2) as response:
                    if response.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.2)
        raise RuntimeError("gunicorn did not answer /healthz in time")

    def workers(self) -> list[int]:
        """Pids of the master's children (its workers), from /proc."""
        pids = []
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                except OSError:
                    continue
                if int(fields[1]) == self.process.pid:
                    pids.append(int(entry.name))
        return pids

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log.close()


# ---- measuring -------------------------------------------------------------------------------------------------


class Tally:
    def __init__(self):
        self.lock = threading.Lock()
        self.times: dict[str, list[float]] = {}
        self.errors: dict[str, list[str]] = {}

    def add(self, kind: str, status: int, seconds: float, ok=(200,)):
        with self.lock:
            self.times.setdefault(kind, []).append(seconds)
            if status not in ok:
                self.errors.setdefault(kind, []).append(str(status))

    def error(self, kind: str, text: str):
        with self.lock:
            self.errors.setdefault(kind, []).append(text)

    def report(self, wall: float | None = None) -> None:
        for kind, times in self.times.items():
            times = sorted(times)
            p50, p99 = statistics.median(times), times[min(len(times) - 1, int(len(times) * 0.99))]
            rate = f"{len(times) / wall:6.1f} req/s" if wall else " " * 12
            errors = self.errors.get(kind, [])
            shown = f" ({', '.join(sorted(set(errors))[:3])})" if errors else ""
            print(f"  {kind:<22} {len(times):4d} req {rate}  p50 {p50 * 1000:7.1f} ms  p99 {p99 * 1000:7.1f} ms  "
                  f"max {times[-1] * 1000:7.1f} ms  errors {len(errors)}{shown}")  # fmt: skip

    def error_count(self) -> int:
        return sum(len(e) for e in self.errors.values())


def pct(times, q):
    times = sorted(times)
    return times[min(len(times) - 1, int(len(times) * q))] if times else 0.0


# ---- the scenario ----------------------------------------------------------------------------------------------


def prepare(url: str | None, smoke: bool):
    """A fresh database with the demo data (planner statistics gathered, as autovacuum would soon after a load this
    size); returns its URL and what the scenario needs from it."""
    app = demo_app(url, "load", smoke=smoke)
    from registry.counties.models import Unit
    from registry.kernel.extensions import db
    from registry.projects.models import FundSource, FundStage, FundTransaction, Project
    from registry.reports.queries import paired_counties
    from registry.reports.services import latest_quarter

    with app.app_context():
        quarter = latest_quarter()
        zhaojue = db.session.scalar(sa.select(Unit).where(Unit.code == "513431"))
        sichuan = db.session.scalar(sa.select(Unit).where(Unit.code == "510000"))
        counties = [c.id for c in paired_counties(sichuan, quarter)]
        # The 昭觉 project with the most 到位 not yet disbursed, of one source.
        stage = sa.case(
            (FundTransaction.stage == FundStage.ARRIVED, FundTransaction.amount_fen),
            (FundTransaction.stage == FundStage.DISBURSED, -FundTransaction.amount_fen),
            else_=0,
        )
        project_id, source, left = db.session.execute(
            sa.select(FundTransaction.project_id, FundTransaction.source, sa.func.sum(stage))
            .join(Project, Project.id == FundTransaction.project_id)
            .where(Project.county_id == zhaojue.id)
            .group_by(FundTransaction.project_id, FundTransaction.source)
            .order_by(sa.func.sum(stage).desc())
            .limit(1)
        ).one()
        info = {
            "url": app.config["SQLALCHEMY_DATABASE_URI"], "dialect": db.engine.dialect.name,
            "quarter": str(quarter), "zhaojue": zhaojue.id, "counties": counties, "project": project_id,
            "source": FundSource(source).value, "left": int(left),
        }  # fmt: skip
        db.session.remove()
        db.engine.dispose()
    return app, info


def read_load(server: Server, info: dict, concurrency: int, total: int, tally: Tally) -> float:
    dashboard = f"/reports/{info['zhaojue']}/{info['quarter']}"
    paths = [("项目列表", "/projects/"), ("劳务协作列表", "/placements/"), ("消费帮扶列表", "/purchases/"),
             ("县季度看板", dashboard)]  # fmt: skip
    users = ["sheng", "zhaojue", "zhejiang"]
    clients = [Client(server.base).login(users[i % len(users)]) for i in range(concurrency)]
    # Warm-up, not counted: each client asks each page once (a worker's first page loads templates and code,
    # the dashboard's first look per scope fills the cache).
    cold = Tally()

    def warm(client: Client):
        for kind, path in paths:
            status, _, seconds = client.request(path)
            cold.add(kind, status, seconds)

    with ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(warm, clients))
    print(f"   warm-up ({concurrency} × {len(paths)} GETs, not counted below; errors {cold.error_count()}):")
    cold.report()
    tally.errors.update(cold.errors)
    counter = iter(range(total))
    lock = threading.Lock()

    def run(client: Client):
        while True:
            with lock:
                n = next(counter, None)
            if n is None:
                return
            kind, path = paths[n % len(paths)]
            try:
                status, _, seconds = client.request(path)
                tally.add(kind, status, seconds)
            except OSError as exc:
                tally.error(kind, type(exc).__name__)

    started = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(run, clients))
    return time.perf_counter() - started


def pdfs_and_health(server: Server, info: dict, count: int, tally: Tally) -> None:
    counties = info["counties"][:count]
    clients = [Client(server.base).login("sheng") for _ in counties]
    done = threading.Event()
    health: list[float] = []

    def poll():
        while not done.is_set():
            started = time.perf_counter()
            try:
                with urllib.request.urlopen(server.base + "/healthz", timeout=TIMEOUT) as response:
                    response.read()
                    status = response.status
            except (OSError, urllib.error.HTTPError) as exc:
                status = getattr(exc, "code", 0)
            seconds = time.perf_counter() - started
            health.append(seconds)
            tally.add("/healthz（PDF 生成中）", status, seconds)
            time.sleep(0.02)

    def one(pair):
        client, county = pair
        status, body, seconds = client.request(f"/reports/{county}/{info['quarter']}.pdf")
        ok = status == 200 and body.startswith(b"%PDF")
        tally.add("PDF 报告", status if ok else -1, seconds)

    poller = threading.Thread(target=poll)
    poller.start()
    try:
        with ThreadPoolExecutor(len(clients)) as pool:
            list(pool.map(one, zip(clients, counties, strict=True)))
    finally:
        done.set()
        poller.join()


def parallel_disbursements(server: Server, info: dict, count: int, tally: Tally) -> tuple[int, int]:
    share = info["left"] // 5
    clients = [Client(server.base).login("sheng") for _ in range(count)]
    page = f"/projects/{info['project']}"
    fields = {"source": info["source"], "stage": "disbursed", "amount_fen": f"{share / 100:.2f}",
              "occurred_on": date.today().isoformat(), "document_no": "BENCH", "note": "并发拨付"}  # fmt: skip
    tokens = [(c, c.token(page)) for c in clients]
    barrier = threading.Barrier(len(clients))

    def one(pair):
        client, token = pair
        data = urllib.parse.urlencode({"csrf_token": token, **fields}).encode()
        barrier.wait()
        status, _, seconds = client.request(page + "/funds", data,
                                            {"Content-Type": "application/x-www-form-urlencoded"})  # fmt: skip
        # 302: recorded; 422: refused by the money rule (拨付 would exceed 到位) — both are right answers.
        tally.add("并行拨付 POST", status, seconds, ok=(302, 303, 422))
        return status

    with ThreadPoolExecutor(len(clients)) as pool:
        statuses = list(pool.map(one, tokens))
    return sum(s in (302, 303) for s in statuses), sum(s == 422 for s in statuses)


def placement_csv(county_code: str, county_name: str, rows: range, seed: int) -> bytes:
    from registry.kernel import idnumbers
    from registry.placements.transfer import HEADERS

    rng = random.Random(seed)
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(HEADERS)
    for n in rows:
        birth = date(1970, 1, 1) + timedelta(days=n * 7 % 12000)
        body = f"{county_code}{birth:%Y%m%d}{n % 1000:03d}"
        cells = {
            "姓名": f"压测{n}", "身份证号": body + idnumbers.check_digit(body), "户类型": "脱贫户",
            "户籍县代码": county_code, "户籍县": county_name, "就业去向": "到东部协作地就业", "就业省份": "浙江省",
            "就业城市": "宁波市", "就业单位": f"压测企业{n % 50}", "有组织转移": "是",
            "就业开始": date(YEAR, 1 + n % 12, 1 + n % 27).isoformat(), "月工资(元)": str(rng.randint(3000, 7000)),
        }  # fmt: skip
        writer.writerow([cells.get(h, "") for h in HEADERS])
    return ("\ufeff" + out.getvalue()).encode()


def overlapping_imports(server: Server, rows: int, tally: Tally) -> None:
    files = [placement_csv("513431", "昭觉县", range(0, rows), 1),
             placement_csv("513431", "昭觉县", range(rows // 2, rows + rows // 2), 2)]  # fmt: skip
    clients = [Client(server.base).login("sheng") for _ in files]
    barrier = threading.Barrier(len(files))

    def one(pair):
        client, content = pair
        barrier.wait()
        status, body, seconds = client.upload("/placements/import", "overlap.csv", content)
        tally.add("重叠导入 POST", status, seconds)

    with ThreadPoolExecutor(len(files)) as pool:
        list(pool.map(one, zip(clients, files, strict=True)))


def killed_import(server: Server, count_placements, tally: Tally) -> tuple[int, int]:
    before = count_placements()
    content = placement_csv("513432", "喜德县", range(1000, 5000), 3)
    client = Client(server.base).login("sheng")
    killed = []

    def read_until_progress(response):
        # Kill once the server has begun checking rows: the import is in the middle of its transaction.
        while line := response.readline():
            if "已检查".encode() in line and not killed:
                for pid in server.workers():
                    os.kill(pid, signal.SIGKILL)
                    killed.append(pid)
        return b""

    try:
        client.upload("/placements/import", "killed.csv", content, stream=read_until_progress)
    except (OSError, http_errors()) as exc:  # the connection dies with the worker
        tally.add("被 kill -9 的导入", 0, 0.0, ok=(0,))
        del exc
    server.wait_ready()
    return before, count_placements() if killed else -1


def http_errors():
    import http.client

    return http.client.HTTPException


INVARIANTS = {
    "拨付 ≤ 到位（每个项目、每个来源）": """
        SELECT count(*) FROM (SELECT project_id, source,
            sum(CASE WHEN stage = 'arrived' THEN amount_fen ELSE 0 END) AS arrived,
            sum(CASE WHEN stage = 'disbursed' THEN amount_fen ELSE 0 END) AS disbursed
          FROM fund_transactions GROUP BY project_id, source) t WHERE disbursed > arrived""",
    "资金汇总表 = 资金记录": """
        SELECT count(*) FROM project_fund_totals f FULL OUTER JOIN (SELECT project_id, source,
            sum(CASE WHEN stage = 'planned' THEN amount_fen ELSE 0 END) AS p,
            sum(CASE WHEN stage = 'arrived' THEN amount_fen ELSE 0 END) AS a,
            sum(CASE WHEN stage = 'disbursed' THEN amount_fen ELSE 0 END) AS d
          FROM fund_transactions GROUP BY project_id, source) t
          ON t.project_id = f.project_id AND t.source = f.source
        WHERE coalesce(f.planned_fen, 0) != coalesce(t.p, 0) OR coalesce(f.arrived_fen, 0) != coalesce(t.a, 0)
           OR coalesce(f.disbursed_fen, 0) != coalesce(t.d, 0)""",
    "同一人、同一户籍县、同一开始日期无重复劳务记录": """
        SELECT count(*) FROM (SELECT id_fingerprint, origin_county_id, start_date FROM placements
          GROUP BY id_fingerprint, origin_county_id, start_date HAVING count(*) > 1) t""",
    "劳务汇总格 = 劳务记录（按县、结对）": """
        SELECT count(*) FROM (SELECT origin_county_id, coalesce(pairing_id, 0) AS pairing, count(*) AS n
            FROM placements GROUP BY origin_county_id, coalesce(pairing_id, 0)) p
          FULL OUTER JOIN (SELECT origin_county_id, coalesce(pairing_id, 0) AS pairing, sum(placements) AS n
            FROM placement_cells GROUP BY origin_county_id, coalesce(pairing_id, 0)) c
          ON c.origin_county_id = p.origin_county_id AND c.pairing = p.pairing
        WHERE coalesce(p.n, 0) != coalesce(c.n, 0)""",
    "消费帮扶汇总 = 消费帮扶记录（按县、结对）": """
        SELECT count(*) FROM (SELECT seller_county_id, coalesce(pairing_id, 0) AS pairing, count(*) AS n,
              sum(amount_fen) AS amount FROM purchases GROUP BY seller_county_id, coalesce(pairing_id, 0)) p
          FULL OUTER JOIN (SELECT seller_county_id, coalesce(pairing_id, 0) AS pairing, sum(purchases) AS n,
              sum(amount_fen) AS amount FROM purchase_totals GROUP BY seller_county_id, coalesce(pairing_id, 0)) t
          ON t.seller_county_id = p.seller_county_id AND t.pairing = p.pairing
        WHERE coalesce(p.n, 0) != coalesce(t.n, 0) OR coalesce(p.amount, 0) != coalesce(t.amount, 0)""",
}


def check_invariants(engine) -> int:
    broken = 0
    with engine.connect() as conn:
        for name, query in INVARIANTS.items():
            bad = conn.exec_driver_sql(query).scalar()
            broken += bool(bad)
            print(f"  {'ok ' if not bad else 'BROKEN'} {name}" + (f"：{bad} 处不符" if bad else ""))
    return broken


def print_log_tail(log: Path, lines: int = 40) -> None:
    """The end of the server's log (a failed run's temporary folder may be gone when someone looks)."""
    try:
        tail = log.read_text(errors="replace").splitlines()[-lines:]
    except OSError:
        return
    print(f"last {len(tail)} lines of {log}:", *tail, sep="\n   ")


def main(argv=None):
    global TIMEOUT  # noqa: PLW0603 - one limit for every request of the run
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", help="emptied and reloaded; default: a new SQLite file under /tmp")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--requests", type=int, default=480)
    parser.add_argument("--pdfs", type=int, default=4)
    parser.add_argument("--disbursements", type=int, default=8)
    parser.add_argument("--overlap-rows", type=int, default=300)
    parser.add_argument("--request-timeout", type=float, default=TIMEOUT, help=f"seconds (default {TIMEOUT})")
    # A smoke run waits longer for an answer: on a loaded machine its one PDF (a render process started for it)
    # may take more than a minute, and the server's own limit (REPORT_PDF_TIMEOUT, 100 s) should answer first.
    smoke = {"workers": 1, "threads": 2, "concurrency": 2, "requests": 8, "pdfs": 1, "disbursements": 3,
             "overlap_rows": 20, "request_timeout": 180}  # fmt: skip
    args = parse_args(parser, smoke, argv)
    TIMEOUT = args.request_timeout

    started = time.perf_counter()
    app, info = prepare(args.database_url, args.smoke)
    print(f"demo data on {info['dialect']} in {time.perf_counter() - started:.1f} s; gunicorn -w {args.workers} "
          f"--threads {args.threads} on 127.0.0.1; concurrency {args.concurrency}")  # fmt: skip
    engine = sa.create_engine(info["url"])

    def count_placements():
        with engine.connect() as conn:
            return conn.exec_driver_sql("SELECT count(*) FROM placements").scalar()

    log = Path(tempfile.mkdtemp(prefix="bench-load-")) / "gunicorn.log"
    server = Server(info["url"], args.workers, args.threads, log)
    errors = 0
    try:
        reads = Tally()
        wall = read_load(server, info, args.concurrency, args.requests, reads)
        print(f"1. reads: {args.requests} GETs in {wall:.1f} s ({args.requests / wall:.1f} req/s)")
        reads.report(wall)
        board = reads.times["县季度看板"]
        figure("load.reads", args.requests / wall, "req/s",
               note=f"{args.requests} GETs, {args.concurrency} clients, {info['dialect']}")  # fmt: skip
        figure("load.dashboard_p50", statistics.median(board) * 1000, "ms", target="<100ms")
        figure("load.dashboard_p99", pct(board, 0.99) * 1000, "ms", target="<300ms")

        rendering = Tally()
        pdfs_and_health(server, info, args.pdfs, rendering)
        health = rendering.times.get("/healthz（PDF 生成中）", [])
        print(f"2. {args.pdfs} PDFs at once, /healthz every 20 ms meanwhile:")
        rendering.report()
        figure("load.healthz_max", max(health, default=0) * 1000, "ms", target="<50ms",
               note=f"while {args.pdfs} PDFs render")  # fmt: skip

        writes = Tally()
        expected = min(args.disbursements, 5)
        passed, refused = parallel_disbursements(server, info, args.disbursements, writes)
        print(f"3. {args.disbursements} parallel 拨付 of 1/5 of what is left: {passed} recorded, {refused} refused "
              f"(expected {expected} and {args.disbursements - expected})")  # fmt: skip
        figure("load.disbursements_recorded", passed, target=str(expected),
               note=f"of {args.disbursements} at once, each 1/5 of what is left")  # fmt: skip
        overlapping_imports(server, args.overlap_rows, writes)
        print(f"4. two overlapping imports of {args.overlap_rows} placements each "
              f"({args.overlap_rows - args.overlap_rows // 2} rows in common)")  # fmt: skip
        before, after = killed_import(server, count_placements, writes)
        print(f"5. kill -9 of every worker during a 4,000-row import: placements {before} → {after} "
              f"({'nothing half-written' if after == before else 'CHANGED'})")  # fmt: skip
        figure("load.killed_import_rows_left", after - before, target="0",
               note=f"placements {before} → {after} around a 4,000-row import whose workers got kill -9")  # fmt: skip
        writes.report()
        errors = reads.error_count() + rendering.error_count() + writes.error_count()
        errors += (after != before) + (passed != expected)
    except BaseException:
        server.stop()
        print_log_tail(log)
        raise
    finally:
        server.stop()
    print("invariants:")
    broken = check_invariants(engine)
    engine.dispose()
    figure("load.errors", errors, target="0", note=f"server log: {log}")
    figure("load.broken_invariants", broken, target="0")
    if errors or broken:
        print_log_tail(log)
        sys.exit(1)


if __name__ == "__main__":
    main()
