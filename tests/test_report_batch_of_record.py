"""A batch of reports (生成全部报告, ``flask reports render``) after approval holds the version of record, as the single
download does (#24 section 1): for a unit whose quarter is approved the stored signed PDF, byte for byte, which the
verification page recognises; for a unit not approved the live render as before; after an unlock the live render
named 非存档版. A 说明.txt says which file is which."""

import io
import zipfile

import pytest

from registry.closing.models import ReportVersion
from registry.kernel.periods import Quarter
from registry.reports.documents import report_stem
from tests.closing_support import approved as _approved
from tests.closing_support import unlocked as _unlocked
from tests.tasks_support import Queue, ThreadConsumer, finished, queue_settings, wait_for

pypdf = pytest.importorskip("pypdf")

Q = Quarter.of(2024, 2)
NOTES = "说明.txt"


pytestmark = pytest.mark.usefixtures("signing_key")


def _text(body: bytes) -> str:
    return "".join(p.extract_text() for p in pypdf.PdfReader(io.BytesIO(body)).pages).replace(" ", "")


def _verifies(client, version: ReportVersion, body: bytes) -> bool:
    checked = client.post(f"/closing/verify/{version.token}", data={"file": (io.BytesIO(body), "r.pdf")},
                          content_type="multipart/form-data")  # fmt: skip
    return checked.status_code == 200 and "文件指纹一致" in checked.get_data(as_text=True)


def test_the_batch_job_holds_the_version_of_record_of_an_approved_quarter(app, world, as_user, tmp_path):
    version = _approved(app)
    stored = report_stem("513431", "昭觉县", Q) + "-已审定版本1.pdf"
    live = report_stem("510824", "苍溪县", Q) + ".pdf"
    client = as_user("province")
    with Queue(app, queue_settings("sqlite", tmp_path)):
        response = client.post("/reports/batch", data={"quarter": str(Q), "unit": [world.zhaojue, world.cangxi]})
        assert response.status_code == 302, response.status_code
        job_id = int(response.headers["Location"].rstrip("/").split("/")[-1])
        with ThreadConsumer():
            job = wait_for(app, job_id, finished)
        assert job.message and job.result_file, job.message
        status = client.get(f"/jobs/{job_id}/status").json
        assert status["done"] == 2 and status["total"] == 2
        download = client.get(status["download"])
        archive = zipfile.ZipFile(io.BytesIO(download.data))
        download.close()

    assert sorted(archive.namelist()) == sorted([stored, live, NOTES])
    # The approved county: the signed bytes of record, recognised by the verification page.
    assert archive.read(stored) == version.pdf
    assert _verifies(client, version, archive.read(stored))
    # The county not approved: rendered from its figures now, unmarked (before approval it is the only one).
    body = archive.read(live)
    assert body.startswith(b"%PDF") and body != version.pdf
    text = _text(body)
    assert "苍溪县" in text and "非存档版" not in text
    notes = archive.read(NOTES).decode("utf-8-sig")
    assert "已审定存档版" in notes and "实时生成" in notes
    record_part, live_part = notes.split("实时生成（", 1)
    assert stored in record_part and live in live_part, notes


def test_the_cli_batch_holds_the_version_of_record_and_after_an_unlock_the_live_render(app, world, runner, tmp_path):
    version = _approved(app)
    out = tmp_path / "approved.zip"
    args = ["reports", "render", "--quarter", str(Q), "--unit", "513431", "--workers", "1"]
    result = runner.invoke(args=[*args, "--out", str(out)])
    assert result.exit_code == 0, result.output
    archive = zipfile.ZipFile(out)
    stored = report_stem("513431", "昭觉县", Q) + "-已审定版本1.pdf"
    assert sorted(archive.namelist()) == [stored, NOTES]
    assert archive.read(stored) == version.pdf
    assert stored in archive.read(NOTES).decode("utf-8-sig")
    with app.test_client() as client:
        assert _verifies(client, version, archive.read(stored))

    # Unlocked: the quarter is being filled in again, so the batch renders the figures as they are now, named as
    # the single download names it then (非存档版), with the stored version 1 still the last one approved.
    _unlocked(app)
    folder = tmp_path / "unlocked"
    result = runner.invoke(args=[*args, "--out", str(folder)])
    assert result.exit_code == 0, result.output
    live = report_stem("513431", "昭觉县", Q) + "-非存档版.pdf"
    assert sorted(p.name for p in folder.iterdir()) == sorted([live, NOTES])
    body = (folder / live).read_bytes()
    assert body.startswith(b"%PDF") and body != version.pdf
    assert "非存档版：本文件为实时生成" in _text(body)  # marked inside too, as the single download is
    notes = (folder / NOTES).read_text(encoding="utf-8-sig")
    assert live in notes and "非存档版" in notes and "已审定版本 1" in notes
