"""Report batches from the web through the real queue (huey consumer) on SQLite storage and on Redis."""

import io
import re
import zipfile

import pytest
import sqlalchemy as sa

from registry.kernel.extensions import db
from registry.reports import batch
from registry.tasks import jobs
from registry.tasks.models import Job, JobState
from registry.tasks.queue import huey
from tests.factories import make_user
from tests.tasks_support import Queue, ThreadConsumer, finished, queue_settings, wait_for

pypdf = pytest.importorskip("pypdf")


@pytest.fixture(params=["sqlite", "redis"])
def queue(app, request, tmp_path):
    with Queue(app, queue_settings(request.param, tmp_path)) as q:
        yield q


def _ask(client, **form):
    return client.post("/reports/batch", data={"quarter": "2019Q2", **form})


def test_batch_through_the_consumer_matches_the_cli(app, world, as_user, runner, queue, tmp_path):
    client = as_user("province")
    response = _ask(client, unit=[str(world.sichuan), str(world.cangxi), str(world.guangyuan)])
    assert response.status_code == 302
    job_id = int(response.headers["Location"].rstrip("/").split("/")[-1])
    page = client.get(f"/jobs/{job_id}").get_data(as_text=True)
    assert "2019年第2季度季度报告（3个单位）" in page and 'id="job-progress"' in page
    seen = []
    with ThreadConsumer():
        job = wait_for(app, job_id, lambda j: seen.append(client.get(f"/jobs/{job_id}/status").json) or finished(j))
    assert job.state is JobState.DONE, job.message
    done = [s["done"] for s in seen]
    assert done == sorted(done) and all(s["total"] == 3 for s in seen)
    final = client.get(f"/jobs/{job_id}/status").json
    assert final["done"] == 3 and final["download_name"] == "2019年第2季度东西部协作季度报告-3个单位.zip"
    download = client.get(final["download"])
    assert download.status_code == 200 and download.mimetype == "application/zip"
    assert "filename*=UTF-8''2019" in download.headers["Content-Disposition"]
    from_queue = zipfile.ZipFile(io.BytesIO(download.data))
    download.close()

    out = tmp_path / "cli.zip"
    args = ["reports", "render", "--quarter", "2019Q2", "--unit", "510000", "--unit", "510824", "--unit", "510800"]
    result = runner.invoke(args=[*args, "--out", str(out), "--workers", "1", "--user", "province"])
    assert result.exit_code == 0, result.output
    from_cli = zipfile.ZipFile(out)
    assert from_queue.namelist() == from_cli.namelist() and len(from_cli.namelist()) == 3
    for name in from_cli.namelist():
        assert _pdf_content(from_queue.read(name)) == _pdf_content(from_cli.read(name)), name
    # Listed under 我的任务 with its state.
    listing = client.get("/jobs/").get_data(as_text=True)
    assert "2019年第2季度季度报告（3个单位）" in listing and "已完成" in listing


def _pdf_content(body: bytes) -> tuple[int, str]:
    """Pages and text of a PDF: two renders of one report differ only in stamps (times, ids, font subset tags)."""
    reader = pypdf.PdfReader(io.BytesIO(body))
    text = "\n".join(page.extract_text() for page in reader.pages)
    # The time the report was made (生成时间, to the minute) differs when the two renders straddle a minute.
    return len(reader.pages), re.sub(r"\d{4}-\d\d-\d\d \d\d:\d\d", "<time>", text)


def test_two_users_asking_for_the_same_batch_share_one_job(app, world, as_user):
    with app.app_context():
        make_user(role=world_role("province"), username="province2")
        db.session.commit()
    first = _ask(as_user("province"), all="1")
    second = _ask(as_user("province2"), all="1")
    assert first.headers["Location"] == second.headers["Location"]
    with app.app_context():
        job = db.session.scalar(sa.select(Job))
        assert sorted(u.username for u in job.users) == ["province", "province2"]
        assert job.total == 1  # 2019Q2: Cangxi is the one paired county
    # A liaison's batch is their own (their pairings only), and the province's job is missing for them.
    liaison = as_user("liaison")
    assert _ask(liaison, all="1", quarter="2024Q2").status_code == 302
    assert liaison.get(first.headers["Location"]).status_code == 404
    # County offices and readers do not batch.
    assert _ask(as_user("county"), all="1").status_code == 403
    assert _ask(as_user("reader"), all="1").status_code == 403


def world_role(name):
    from registry.kernel.roles import Role

    return Role(name)


def test_units_outside_the_scope_are_refused(world, as_user):
    client = as_user("prefecture")  # Liangshan
    assert _ask(client, unit=[str(world.cangxi)]).status_code == 404
    response = _ask(client, quarter="2024Q2", unit=[str(world.zhaojue)])
    assert response.status_code == 302 and "/jobs/" in response.headers["Location"]
    response = _ask(client, quarter="2024Q9", all="1")
    assert response.status_code == 302 and "/reports/" in response.headers["Location"]


def test_the_reports_page_offers_the_batch_to_province_prefecture_and_liaison(world, as_user):
    for role in ("province", "prefecture", "liaison"):
        page = as_user(role).get("/reports/?quarter=2024Q2").get_data(as_text=True)
        assert "生成全部报告" in page and "flask reports render" not in page, role
    for role in ("county", "reader", "admin"):
        assert "生成全部报告" not in as_user(role).get("/reports/?quarter=2024Q2").get_data(as_text=True), role


def test_a_task_that_raises_is_retried_then_failed_with_a_reason(app, world, as_user, queue, monkeypatch):
    calls = []

    def broken(*args, **kwargs):
        calls.append(1)
        raise OSError("磁盘已满")

    monkeypatch.setattr(batch, "render_many", broken)
    response = _ask(as_user("province"), all="1")
    job_id = int(response.headers["Location"].split("/")[-1])
    with ThreadConsumer():
        job = wait_for(app, job_id, finished)
    assert job.state is JobState.FAILED and job.attempts == jobs.MAX_ATTEMPTS == len(calls)
    assert job.message == "后台任务失败（已尝试 3 次）：磁盘已满"
    assert not job.result_file


def test_a_unit_that_fails_offers_no_zip(app, world, as_user, queue, monkeypatch):
    def flaky(task, app=None):
        return batch.Outcome(task.unit_id, "", 0.0, 0.0, "排版失败")

    monkeypatch.setattr(batch, "render_task", flaky)
    client = as_user("province")
    job_id = int(_ask(client, all="1").headers["Location"].split("/")[-1])
    with ThreadConsumer():
        job = wait_for(app, job_id, finished)
    assert job.state is JobState.FAILED and job.errors == [{"unit": "苍溪县", "error": "排版失败"}]
    assert "未生成压缩包" in job.message and client.get(f"/jobs/{job_id}/download").status_code == 404


def test_the_web_keeps_working_when_the_queue_is_down(app, world, as_user, tmp_path):
    settings = queue_settings("sqlite", tmp_path) | {"TASKS_QUEUE_URL": "redis://127.0.0.1:1/0"}
    with Queue(app, settings):
        client = as_user("province")
        response = _ask(client, all="1")
        assert response.status_code == 302 and "/reports/" in response.headers["Location"]
        page = client.get(response.headers["Location"]).get_data(as_text=True)
        assert "后台任务暂不可用" in page
        with app.app_context():
            job = db.session.scalar(sa.select(Job))
            assert job.state is JobState.FAILED and "后台任务暂不可用" in job.message
        assert client.get("/jobs/").status_code == 200
        assert "后台任务暂不可用" in client.get(f"/jobs/{job.id}").get_data(as_text=True)


def test_a_queued_job_without_a_live_consumer_says_the_queue_is_unavailable(app, world, as_user, tmp_path):
    with Queue(app, queue_settings("sqlite", tmp_path)):
        client = as_user("province")
        job_url = _ask(client, all="1").headers["Location"]
        assert client.get(job_url + "/status").json["unavailable"] == "后台任务暂不可用"
        with app.app_context():
            from registry.tasks import beat

            beat()
        assert client.get(job_url + "/status").json["unavailable"] == ""
        huey.flush()


def test_a_batch_is_reused_until_something_under_its_units_changes(world_records):
    """The job key holds the digest of the data versions of the batch's units (and those within and above them), as
    the report cache does: a write in 布拖 leaves 昭觉's batch done and shared, a write in 昭觉 asks for a new one
    (issue 23). Keyed on the newest audit event, any write anywhere made every batch be rendered again."""
    from datetime import date

    from registry.auth.models import User
    from registry.kernel.periods import Quarter
    from registry.tasks.reports import request_batch
    from tests.factories import make_placement

    w = world_records
    province = db.session.scalar(sa.select(User).where(User.username == "province"))
    quarter = Quarter.of(2024, 2)
    first, new = request_batch(province, quarter, [w.zhaojue], everything=False)
    assert new
    db.session.commit()
    assert request_batch(province, quarter, [w.zhaojue], everything=False) == (first, False)
    make_placement(w.butuo, id_number="513429199001011237", start_date=date(2024, 4, 2))
    db.session.commit()
    assert request_batch(province, quarter, [w.zhaojue], everything=False) == (first, False)
    db.session.commit()
    # 凉山州's batch reads 布拖 too: not the same data any more than its own key says.
    whole, new = request_batch(province, quarter, [w.liangshan], everything=False)
    assert new and whole.id != first.id
    db.session.commit()
    make_placement(w.zhaojue, id_number="513431199001011239", start_date=date(2024, 4, 3))
    db.session.commit()
    again, new = request_batch(province, quarter, [w.zhaojue], everything=False)
    assert new and again.id != first.id
    db.session.commit()
    assert request_batch(province, quarter, [w.liangshan], everything=False)[1]
