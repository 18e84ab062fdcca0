"""Helpers of the task-queue tests: a queue on SQLite or on the Redis at 127.0.0.1:6379 under a name of its own,
consumers in threads of the test process or in a subprocess (to be killed), and waiting for a job."""

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from registry.kernel.extensions import db
from registry.tasks.models import Job, JobState
from registry.tasks.queue import configure, huey

REDIS_URL = os.environ.get("REGISTRY_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
ROOT = Path(__file__).resolve().parent.parent


def redis_answers() -> bool:
    host, port = REDIS_URL.split("//", 1)[1].split("/", 1)[0].split(":")
    try:
        socket.create_connection((host, int(port)), timeout=1).close()
    except OSError:
        return False
    return True


def queue_settings(kind: str, tmp_path) -> dict:
    if kind == "redis":
        if not redis_answers():
            if os.environ.get("CI"):
                pytest.fail(f"Redis does not answer at {REDIS_URL} (.ci/run starts it)")
            pytest.skip(f"Redis does not answer at {REDIS_URL}")
        url = REDIS_URL
    else:
        url = f"sqlite:///{tmp_path / 'huey.sqlite3'}"
    return {
        "TASKS_QUEUE_URL": url,
        # Its own name (a key prefix in Redis): never another test's or another user's queue.
        "TASKS_QUEUE_NAME": f"registry-test-{uuid.uuid4().hex[:10]}",
        "TASKS_FOLDER": str(tmp_path / "jobs"),
        "TASKS_REPORT_WORKERS": 1,
        "TASKS_POLL_MAX_SECONDS": 0.1,
        "TASKS_HEARTBEAT_SECONDS": 0.2,
    }


class Queue:
    def __init__(self, app, settings):
        self.app, self.settings = app, settings
        self.saved = {k: app.config.get(k) for k in settings}

    def __enter__(self):
        self.app.config.update(self.settings)
        configure(self.app)
        return self

    def __exit__(self, *exc):
        try:
            huey.storage.flush_all()
            huey.storage.close()
        except Exception:  # noqa: BLE001, S110 - best effort cleanup of the test's own queue
            pass
        self.app.config.update(self.saved)
        configure(self.app)


class ThreadConsumer:
    """The real consumer's scheduler and workers, as threads of the test process (no signal handlers)."""

    def __init__(self, workers=1):
        self.consumer = huey.create_consumer(
            workers=workers, worker_type="thread", periodic=False, initial_delay=0.05, max_delay=0.1,
            check_worker_health=False,
        )  # fmt: skip

    def __enter__(self):
        self.consumer.scheduler.start()
        for _, thread in self.consumer.worker_threads:
            thread.start()
        return self

    def __exit__(self, *exc):
        self.consumer.stop(graceful=True)


def consumer_process(app, database_url: str, *extra, report_workers: int = 1) -> subprocess.Popen:
    """``flask tasks consumer`` in its own process group, on the test's database and queue; a report batch renders
    in this process with ``report_workers`` 1, in that many worker processes with more."""
    env = dict(os.environ)
    env.pop("REGISTRY_TEST_DATABASE_URL", None)
    env.update(
        DATABASE_URL=database_url,
        REGISTRY_SECRET_KEY=app.config["SECRET_KEY"],
        REGISTRY_ID_NUMBER_KEY=app.config["ID_NUMBER_KEY"],
        REGISTRY_TASKS_QUEUE_URL=app.config["TASKS_QUEUE_URL"],
        REGISTRY_TASKS_QUEUE_NAME=app.config["TASKS_QUEUE_NAME"],
        REGISTRY_TASKS_FOLDER=app.config["TASKS_FOLDER"],
        REGISTRY_TASKS_REPORT_WORKERS=str(report_workers),
        REGISTRY_TASKS_POLL_MAX_SECONDS="0.1",
        REGISTRY_TASKS_HEARTBEAT_SECONDS="0.2",
        REGISTRY_BACKUP_SCHEDULE="false",
        REGISTRY_ARGON2_TIME_COST="1",
        REGISTRY_ARGON2_MEMORY_COST="1024",
        REGISTRY_ARGON2_PARALLELISM="1",
    )
    flask = [sys.executable, "-m", "flask", "--app", "wsgi", "tasks", "consumer", "-w", "1", *extra]
    # Its log next to the job files, for a failing test to be read.
    with open(Path(app.config["TASKS_FOLDER"]).parent / "consumer.log", "ab") as log:
        return subprocess.Popen(flask, cwd=ROOT, env=env, start_new_session=True,  # noqa: S603
                                stdout=log, stderr=subprocess.STDOUT)  # fmt: skip


def kill(process: subprocess.Popen) -> None:
    """SIGKILL the consumer and everything it started (its report worker processes)."""
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    process.wait(timeout=10)


def wait_for(app, job_id: int, condition, *, timeout=60.0, every=0.05):
    """Poll the job row until ``condition(job)``; returns the job (detached values) or fails with its state."""
    deadline = time.monotonic() + timeout
    while True:
        with app.app_context():
            job = db.session.get(Job, job_id)
            if condition(job):
                db.session.expunge(job)
                return job
            state = (job.state, job.done, job.total, job.message)
        if time.monotonic() > deadline:
            pytest.fail(f"job {job_id} never reached the condition; last {state}")
        time.sleep(every)


def finished(job) -> bool:
    return job.state in (JobState.DONE, JobState.FAILED)
