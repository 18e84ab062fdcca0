"""A consumer killed with SIGKILL mid-job: report batches are run again (or failed), never stuck as running, never a
half-written ZIP; an import writes nothing and its job says it failed. Also the import's background path."""

import csv
import io
import os
import time
import zipfile
from datetime import date, timedelta

import pytest
import sqlalchemy as sa
from werkzeug.datastructures import FileStorage
from werkzeug.test import encode_multipart

from registry.kernel.extensions import db
from registry.kernel.idnumbers import check_digit
from registry.placements.models import Placement
from registry.placements.transfer import HEADERS
from registry.tasks import jobs, recover_imports, requeue
from registry.tasks.models import Job, JobState
from tests.tasks_support import Queue, ThreadConsumer, consumer_process, finished, kill, queue_settings, wait_for


@pytest.fixture(params=["sqlite", "redis"])
def queue(app, request, tmp_path):
    with Queue(app, queue_settings(request.param, tmp_path)) as q:
        yield q


def _placements_csv(rows: int) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(HEADERS)
    for n in range(rows):
        body = f"513431{date(1970, 1, 1) + timedelta(days=n):%Y%m%d}{n % 1000:03d}"
        cells = {
            "姓名": f"测试{n}", "身份证号": body + check_digit(body), "户类型": "脱贫户", "户籍县代码": "513431",
            "就业去向": "到东部协作地就业", "就业省份": "浙江省", "就业城市": "宁波市", "就业单位": "宁波某电子厂",
            "有组织转移": "是", "就业开始": "2024-05-01", "月工资(元)": "4800",
        }  # fmt: skip
        writer.writerow([cells.get(h, "") for h in HEADERS])
    return buffer.getvalue().encode("utf-8-sig")


def _placements(app) -> int:
    with app.app_context():
        return db.session.scalar(sa.select(sa.func.count(Placement.id)))


def test_killed_batch_is_run_again_by_the_next_consumer(app, world, as_user, queue, database_url):
    client = as_user("province")
    units = [world.sichuan, world.guangyuan, world.cangxi, world.liangshan, world.sichuan]
    response = client.post("/reports/batch", data={"quarter": "2019Q2", "unit": [str(u) for u in units]})
    job_id = int(response.headers["Location"].split("/")[-1])
    first = consumer_process(app, database_url)
    try:
        job = wait_for(app, job_id, lambda j: j.state is JobState.RUNNING and j.done >= 1 or finished(j))
        assert job.state is JobState.RUNNING, "the batch ended before it could be killed"
    finally:
        kill(first)
    with app.app_context():
        job = db.session.get(Job, job_id)
        assert job.state is JobState.RUNNING and job.result_file == ""
        # Nothing for download while it is not done, and no partial file in the jobs folder.
        assert client.get(f"/jobs/{job_id}/download").status_code == 404
        assert not [p.name for p in jobs.folder().iterdir() if p.suffix in (".zip", ".part")]
    second = consumer_process(app, database_url)
    try:
        job = wait_for(app, job_id, finished)
    finally:
        kill(second)
    assert job.state is JobState.DONE and job.attempts == 2, job.message
    download = client.get(f"/jobs/{job_id}/download")
    assert len(zipfile.ZipFile(io.BytesIO(download.data)).namelist()) == 4
    download.close()


def test_a_batch_killed_on_its_last_attempt_is_failed(app, world, as_user, queue):
    """The sweeper: a run whose process is gone is failed once the attempts are used up, with the reason."""
    client = as_user("province")
    job_id = int(
        client.post("/reports/batch", data={"quarter": "2019Q2", "all": "1"}).headers["Location"].split("/")[-1]
    )
    with app.app_context():
        job = db.session.get(Job, job_id)
        job.state, job.attempts, job.worker = JobState.RUNNING, jobs.MAX_ATTEMPTS, f"{os.uname().nodename}:999999999"
        db.session.commit()
        assert jobs.sweep(requeue) == [job_id]
        job = db.session.get(Job, job_id)
        assert job.state is JobState.FAILED and job.message == "后台任务进程已退出，任务未完成。请重新提交。"


def test_a_silent_run_on_another_host_is_taken_for_dead(app, world, as_user, queue):
    client = as_user("province")
    job_id = int(
        client.post("/reports/batch", data={"quarter": "2019Q2", "all": "1"}).headers["Location"].split("/")[-1]
    )
    app.config["TASKS_STALE_SECONDS"] = 0
    try:
        with app.app_context():
            job = db.session.get(Job, job_id)
            job.state, job.attempts, job.worker = JobState.RUNNING, 1, "another-host:1"
            db.session.commit()
            assert jobs.sweep(requeue) == [job_id]
            assert db.session.get(Job, job_id).state is JobState.QUEUED
    finally:
        app.config["TASKS_STALE_SECONDS"] = 120
    with ThreadConsumer():
        job = wait_for(app, job_id, finished)
    assert job.state is JobState.DONE and job.attempts == 2


def test_a_large_import_runs_in_the_background(app, world, as_user, queue):
    app.config["IMPORT_BACKGROUND_BYTES"] = 100
    before = _placements(app)
    try:
        client = as_user("county")
        # A title row above the header, as offices write: read, and said in the job's message as on the page.
        titled = "劳务协作台账\r\n".encode("utf-8-sig") + _placements_csv(3).removeprefix("\ufeff".encode())
        data = {"file": (io.BytesIO(titled), "三行.csv")}
        response = client.post("/placements/import", data=data, content_type="multipart/form-data")
        assert response.status_code == 302 and "/jobs/" in response.headers["Location"]
        job_id = int(response.headers["Location"].split("/")[-1])
        assert _placements(app) == before
        with ThreadConsumer():
            job = wait_for(app, job_id, finished)
        assert job.state is JobState.DONE
        assert job.message == "已导入 3 行：新增 3，更新 0，未变 0。已忽略表头上方的 1 行标题（表头在第 2 行）。"
        assert _placements(app) == before + 3
        page = client.get(f"/jobs/{job_id}").get_data(as_text=True)
        assert "导入劳务协作：三行.csv" in page and "已导入 3 行" in page
        # A file with errors: nothing written, the job failed, the error list for download.
        bad = _placements_csv(2).replace(b"2024-05-01", b"2024-13-01")
        response = client.post("/placements/import", data={"file": (io.BytesIO(bad), "坏.csv")},
                               content_type="multipart/form-data")  # fmt: skip
        job_id = int(response.headers["Location"].split("/")[-1])
        with ThreadConsumer():
            job = wait_for(app, job_id, finished)
        assert job.state is JobState.FAILED and job.message.startswith("未导入：2 处错误")
        download = client.get(f"/jobs/{job_id}/download")
        assert download.status_code == 200 and "filename*=UTF-8''" in download.headers["Content-Disposition"]
        download.close()
        assert _placements(app) == before + 3
    finally:
        app.config["IMPORT_BACKGROUND_BYTES"] = 1024 * 1024


def test_an_import_killed_midway_writes_nothing_and_fails(app, world, as_user, queue, database_url):
    app.config["IMPORT_BACKGROUND_BYTES"] = 100
    before = _placements(app)
    try:
        client = as_user("county")
        data = {"file": FileStorage(io.BytesIO(_placements_csv(6000)), "大文件.csv", content_type="text/csv")}
        # Encoded in memory: the test client would spool a body this large to a file it never closes.
        boundary, body = encode_multipart(data)
        response = client.post("/placements/import", data=body,
                               content_type=f"multipart/form-data; boundary={boundary}")  # fmt: skip
        job_id = int(response.headers["Location"].split("/")[-1])
    finally:
        app.config["IMPORT_BACKGROUND_BYTES"] = 1024 * 1024
    consumer = consumer_process(app, database_url)
    try:
        # Killed once it has committed its first chunk of 2,000 rows (a long import commits chunk by chunk, so
        # that nobody is locked out meanwhile; the sweeper then takes back what it committed).
        deadline = time.monotonic() + 120
        while (client.get(f"/jobs/{job_id}/status").json["done"] or 0) < 2000:
            assert time.monotonic() < deadline, "the import never reported progress"
            assert client.get(f"/jobs/{job_id}/status").json["state"] != "done", "finished before it was killed"
            time.sleep(0.05)
    finally:
        kill(consumer)
    assert _placements(app) >= before + 2000
    with app.app_context():
        assert jobs.sweep(requeue) == [job_id]
        job = db.session.get(Job, job_id)
        assert job.state is JobState.FAILED
        assert job.message == "后台任务进程已退出，任务未完成，没有写入任何数据。请重新导入。"
        recover_imports()  # the sweeper's next step: its process is gone
        db.session.remove()
    assert "没有写入任何数据" in client.get(f"/jobs/{job_id}").get_data(as_text=True)
    assert _placements(app) == before
