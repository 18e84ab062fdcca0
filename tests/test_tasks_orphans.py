"""The task consumer killed outright (SIGKILL of its own process, not of its process group, as an out-of-memory kill
or a supervisor does): its report-render worker processes die with it, instead of rendering on beside the next
consumer. Also: two simultaneous requests for the same report batch share one job on either engine."""

import os
import signal
import sys
import threading
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from registry.kernel.extensions import db
from registry.tasks.models import Job, JobState
from tests.races import race
from tests.tasks_support import Queue, consumer_process, finished, queue_settings, wait_for


@pytest.fixture
def queue(app, tmp_path):
    with Queue(app, queue_settings("sqlite", tmp_path)) as q:
        yield q


def _children(pid: int) -> list[int]:
    """Processes whose parent is ``pid`` (from /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                found.append(int(entry.name))
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _is_render_worker(pid: int) -> bool:
    try:
        return b"spawn_main" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_render_workers_die_with_a_killed_consumer(app, world, as_user, queue, database_url):
    client = as_user("province")
    units = [world.sichuan, world.guangyuan, world.cangxi, world.liangshan, world.zhaojue] * 3
    response = client.post("/reports/batch", data={"quarter": "2019Q2", "unit": [str(u) for u in units]})
    job_id = int(response.headers["Location"].split("/")[-1])
    consumer = consumer_process(app, database_url, report_workers=2)  # the batch in two worker processes
    workers = []
    try:
        wait_for(app, job_id, lambda j: j.state is JobState.RUNNING or finished(j))
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            workers = [p for p in _children(consumer.pid) if _is_render_worker(p)]
            if len(workers) >= 2:
                break
            time.sleep(0.05)
        assert len(workers) >= 2, "the batch never started its worker processes"
        os.kill(consumer.pid, signal.SIGKILL)  # the consumer alone, not its process group
        consumer.wait(timeout=10)
        deadline = time.monotonic() + 10
        while any(_alive(p) for p in workers) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not [p for p in workers if _alive(p)], "render workers outlived their consumer"
    finally:
        try:
            os.killpg(consumer.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        consumer.wait(timeout=10)
        for p in workers:
            try:
                os.kill(p, signal.SIGKILL)
            except ProcessLookupError:
                pass


def test_two_simultaneous_requests_for_all_reports_share_one_job(app, world, as_user, queue, monkeypatch):
    """The first request has made its job and not committed; the second, started then, must find it once the
    first commits (PostgreSQL made a second job: nothing made it wait), and join it."""
    from registry.tasks import jobs

    first, second = as_user("province"), as_user("province")
    made, go = threading.Event(), threading.Event()
    new_job = jobs.new_job

    def paused(*args, **kwargs):
        job = new_job(*args, **kwargs)
        if threading.current_thread().name == "first":
            made.set()
            assert go.wait(30)
        return job

    monkeypatch.setattr(jobs, "new_job", paused)
    answers = {}

    clients = {"first": first, "second": second}

    def post(name):
        answers[name] = clients[name].post("/reports/batch", data={"quarter": "2024Q2", "all": "1"})

    race(app, post, made, go)
    assert answers["first"].status_code == answers["second"].status_code == 302
    assert answers["first"].location == answers["second"].location
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count(Job.id))) == 1
