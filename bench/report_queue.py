"""Benchmark: a batch of quarterly reports through the task queue against the command line's batch, same run.

Usage:
    .venv/bin/python -m bench.report_queue [--quarter 2024Q3] [--batch 68] [--workers 2] [--redis URL]

Loads the demo into a fresh SQLite database, then renders ``--batch`` reports (the quarter's paired counties,
cycled to that many) twice with ``--workers`` processes: (1) the command line's engine in this process
(``reports.batch.render_many`` + the ZIP, as ``flask reports render`` does), (2) a job through a real consumer
(``flask tasks consumer`` in a subprocess, on SQLite storage or on ``--redis``), timed from the enqueue to the job's
row saying done, ZIP written. Target (issue 13): the queue at most 1.1× the command line.
"""

import argparse
import os
import subprocess
import sys
import tempfile
import time
from itertools import cycle, islice
from pathlib import Path

import sqlalchemy as sa

from bench import fresh_app
from registry.extensions import db


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quarter", default="2024Q3")
    parser.add_argument("--batch", type=int, default=68)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--redis", help="redis://127.0.0.1:6379/0 to run the queue on Redis")
    args = parser.parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="bench-queue-"))
    app = fresh_app(f"sqlite:///{scratch / 'bench.sqlite3'}", "queue")
    queue_url = args.redis or f"sqlite:///{scratch / 'huey.sqlite3'}"
    app.config.update(TASKS_QUEUE_URL=queue_url, TASKS_QUEUE_NAME=f"registry-bench-{os.getpid()}",
                      TASKS_FOLDER=str(scratch / "jobs"), TASKS_REPORT_WORKERS=args.workers)  # fmt: skip

    from registry import demo
    from registry.auth.models import User
    from registry.counties.models import Unit
    from registry.counties.services import DATA_DIR, load_divisions
    from registry.periods import Quarter
    from registry.reports import batch
    from registry.reports.queries import paired_counties
    from registry.tasks import jobs, reports
    from registry.tasks.models import Job, JobKind, JobState
    from registry.tasks.queue import configure, huey

    configure(app)
    quarter = Quarter.parse(args.quarter)
    with app.app_context():
        load_divisions(DATA_DIR)
        demo.load()
        db.session.commit()
        sichuan = db.session.scalar(sa.select(Unit).where(Unit.code == "510000"))
        counties = paired_counties(sichuan, quarter)
        units = list(islice(cycle(c.id for c in counties), args.batch))
        admin = db.session.scalar(sa.select(User).where(User.role == "admin").limit(1))
        config = batch.worker_config(app)

    # (1) The command line's engine.
    with app.app_context(), batch.scratch_folder() as folder:
        t0 = time.perf_counter()
        tasks = [batch.Task(u, str(quarter), None, folder) for u in units]
        outcomes = batch.render_many(tasks, workers=args.workers, config=config, app=app)
        batch.write_output(folder, sorted({o.filename for o in outcomes}), scratch / "cli.zip")
        cli = time.perf_counter() - t0
    print(f"command line: {len(units)} reports ({len(counties)} paired counties cycled), {args.workers} workers: "
          f"{cli:.1f} s")  # fmt: skip

    # (2) The queue: a consumer process, started (and idle) before the clock starts.
    env = dict(os.environ, DATABASE_URL=app.config["SQLALCHEMY_DATABASE_URI"], REGISTRY_SECRET_KEY="bench",
               REGISTRY_TASKS_QUEUE_URL=queue_url, REGISTRY_TASKS_QUEUE_NAME=app.config["TASKS_QUEUE_NAME"],
               REGISTRY_TASKS_FOLDER=app.config["TASKS_FOLDER"], REGISTRY_TASKS_REPORT_WORKERS=str(args.workers),
               REGISTRY_TASKS_POLL_MAX_SECONDS="0.2", REGISTRY_BACKUP_SCHEDULE="false",
               REGISTRY_ID_NUMBER_KEY=app.config["ID_NUMBER_KEY"])  # fmt: skip
    root = Path(__file__).resolve().parent.parent
    consumer = subprocess.Popen([sys.executable, "-m", "flask", "--app", "wsgi", "tasks", "consumer", "-w", "1"],  # noqa: S603
                                cwd=root, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        time.sleep(5)
        with app.app_context():
            # The job as the reports page makes it, but with the cycled list (units may repeat).
            job = jobs.new_job(JobKind.REPORTS, "bench", f"bench-{time.time()}",
                               {"quarter": str(quarter), "units": units, "user": None, "scope": "all",
                                "download_name": "bench.zip"}, admin, total=len(units))  # fmt: skip
            db.session.commit()
            job_id = job.id
            t0 = time.perf_counter()
            reports.start(job)
        while True:
            with app.app_context():
                state = db.session.get(Job, job_id).state
            if state in (JobState.DONE, JobState.FAILED):
                break
            time.sleep(0.1)
        queued = time.perf_counter() - t0
    finally:
        consumer.terminate()
        consumer.wait(timeout=30)
        try:
            huey.storage.flush_all()
        except Exception:  # noqa: BLE001, S110 - cleanup of the bench's own queue
            pass
    print(f"task queue ({'Redis' if args.redis else 'SQLite'} storage): {state.value} in {queued:.1f} s; "
          f"ratio {queued / cli:.2f} (target ≤ 1.1)")  # fmt: skip


if __name__ == "__main__":
    main()
