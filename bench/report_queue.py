"""Benchmark: a batch of quarterly reports through the task queue against the command line's batch, same run.

Usage:
    .venv/bin/python -m bench.report_queue [--quarter 2024Q3] [--batch 68] [--workers 2] [--redis URL] [--smoke]

Loads the demo into a fresh SQLite database, then renders ``--batch`` reports (the quarter's paired counties,
cycled to that many) twice with ``--workers`` processes: (1) the command line's engine in this process
(``reports.batch.render_many`` + the ZIP, as ``flask reports render`` does), (2) a job through a real consumer
(``flask tasks consumer`` in a subprocess, on SQLite storage or on ``--redis``), timed from the enqueue to the job's
row saying done, ZIP written. Target (issue 13): the queue at most 1.1× the command line.
``--smoke``: the smaller demo, one report, one worker, the clock started without waiting for the consumer to be idle
(seconds, figures not targets).
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

from bench import demo_app, figure, parse_args
from registry.kernel.extensions import db

#: Longest wait for the queued job (a consumer that never takes it fails the bench instead of hanging it).
JOB_TIMEOUT = 900


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quarter", default="2024Q3")
    parser.add_argument("--batch", type=int, default=68)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--redis", help="redis://127.0.0.1:6379/0 to run the queue on Redis")
    parser.add_argument("--settle", type=float, default=5, help="seconds the consumer starts before the clock")
    args = parse_args(parser, {"batch": 1, "workers": 1, "settle": 0}, argv)
    scratch = Path(tempfile.mkdtemp(prefix="bench-queue-"))
    app = demo_app(f"sqlite:///{scratch / 'bench.sqlite3'}", "queue", smoke=args.smoke)
    queue_url = args.redis or f"sqlite:///{scratch / 'huey.sqlite3'}"
    app.config.update(TASKS_QUEUE_URL=queue_url, TASKS_QUEUE_NAME=f"registry-bench-{os.getpid()}",
                      TASKS_FOLDER=str(scratch / "jobs"), TASKS_REPORT_WORKERS=args.workers)  # fmt: skip

    from registry.auth.models import User
    from registry.counties.models import Unit
    from registry.kernel.periods import Quarter
    from registry.reports import batch, workers
    from registry.reports.queries import paired_counties
    from registry.tasks import jobs, reports
    from registry.tasks.models import Job, JobKind, JobState
    from registry.tasks.queue import configure, huey

    configure(app)
    quarter = Quarter.parse(args.quarter)
    with app.app_context():
        sichuan = db.session.scalar(sa.select(Unit).where(Unit.code == "510000"))
        counties = paired_counties(sichuan, quarter)
        units = list(islice(cycle(c.id for c in counties), args.batch))
        admin = db.session.scalar(sa.select(User).where(User.role == "admin").limit(1))
        config = workers.worker_config(app)

    # (1) The command line's engine.
    with app.app_context(), batch.scratch_folder() as folder:
        t0 = time.perf_counter()
        tasks = [batch.Task(u, str(quarter), None, folder) for u in units]
        outcomes = batch.render_many(tasks, workers=args.workers, config=config, app=app)
        batch.write_output(folder, sorted({o.filename for o in outcomes}), scratch / "cli.zip")
        cli = time.perf_counter() - t0
    figure("report_queue.command_line", cli, "s",
           note=f"{len(units)} reports ({len(counties)} paired counties cycled), {args.workers} workers")  # fmt: skip

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
        time.sleep(args.settle)
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
                job = db.session.get(Job, job_id)
                state, message, errors = job.state, job.message, job.errors
            if state in (JobState.DONE, JobState.FAILED):
                break
            if consumer.poll() is not None or time.perf_counter() - t0 > JOB_TIMEOUT:
                raise SystemExit(f"the job did not end: consumer exit status {consumer.returncode}, state {state}")
            time.sleep(0.1)
        queued = time.perf_counter() - t0
    finally:
        consumer.terminate()
        consumer.wait(timeout=30)
        try:
            huey.storage.flush_all()
        except Exception:  # noqa: BLE001, S110 - cleanup of the bench's own queue
            pass
    storage = "Redis" if args.redis else "SQLite"
    figure(
        "report_queue.queue", queued, "s", baseline=cli, note=f"the same batch as a job ({storage} storage): {state}"
    )
    figure("report_queue.ratio", queued / cli, "x", target="≤1.1x", baseline="command_line",
           note="task queue ÷ command line")  # fmt: skip
    if state != JobState.DONE:
        raise SystemExit(f"the queued job ended {state}: {message} {errors[:3]}")


if __name__ == "__main__":
    main()
