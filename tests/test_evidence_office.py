"""Office files an office uploads as evidence (#24 section 4): a macro-enabled file renamed .docx/.xlsx (it holds a
VBA project) is refused, and so is a "zip bomb" .xlsx, with a message that says what is wrong; ordinary docx and
xlsx files are still accepted."""

import io
import zipfile

import pytest
import sqlalchemy as sa

from registry.evidence.files import MACROS, MAX_UNPACKED, check_content
from registry.evidence.models import Attachment
from registry.kernel.extensions import db
from registry.kernel.services import ServiceError
from registry.kernel.storage import LocalStorage

WORD = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
EXCEL = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
TYPES = '<Types><Default Extension="xml" ContentType="application/xml"/></Types>'
MACRO_TYPES = '<Types><Override PartName="/word/document.xml" ContentType="application/vnd.ms-word.document.macroEnabled.main+xml"/></Types>'  # noqa: E501


def office(parts: dict) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as z:
        for name, body in parts.items():
            z.writestr(zipfile.ZipInfo(name, date_time=(2024, 1, 1, 0, 0, 0)), body)
    return out.getvalue()


def bomb(unpacked: int) -> bytes:
    """An .xlsx whose one sheet unpacks to ``unpacked`` bytes of zeros (a few hundred kB packed)."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as z:
        z.writestr("[Content_Types].xml", TYPES)
        z.writestr("xl/workbook.xml", "<workbook/>")
        block = b"\0" * (1 << 20)
        with z.open("xl/worksheets/sheet1.xml", "w", force_zip64=True) as sheet:
            for _ in range(unpacked // len(block)):
                sheet.write(block)
    return out.getvalue()


MACRO_FILES = {
    "word/vbaProject.bin": {"[Content_Types].xml": TYPES, "word/document.xml": "<w/>", "word/vbaProject.bin": "VBA"},
    "xl/vbaProject.bin": {"[Content_Types].xml": TYPES, "xl/workbook.xml": "<w/>", "xl/vbaProject.bin": "VBA"},
    "ppt/vbaProject.bin": {"[Content_Types].xml": TYPES, "ppt/presentation.xml": "<p/>", "ppt/vbaProject.bin": "VBA"},
    "upper-case name": {"[Content_Types].xml": TYPES, "word/document.xml": "<w/>", "word/VBAPROJECT.BIN": "VBA"},
    "macro-enabled type": {"[Content_Types].xml": MACRO_TYPES, "word/document.xml": "<w/>"},
    "vbaData.xml": {"[Content_Types].xml": TYPES, "word/document.xml": "<w/>", "word/vbaData.xml": "<v/>"},
}


@pytest.mark.parametrize("case", sorted(MACRO_FILES))
def test_office_files_with_macros_are_refused(case):
    with pytest.raises(ServiceError) as refused:
        check_content(office(MACRO_FILES[case]))
    assert refused.value.message == MACROS


def test_ordinary_office_files_are_accepted():
    docx = check_content(office({"[Content_Types].xml": TYPES, "word/document.xml": "<w/>",
                                 "word/media/image1.png": b"\x89PNG"}))  # fmt: skip
    xlsx = check_content(office({"[Content_Types].xml": TYPES, "xl/workbook.xml": "<w/>"}))
    assert (docx.content_type, docx.extension) == (WORD, "docx")
    assert (xlsx.content_type, xlsx.extension) == (EXCEL, "xlsx")


def test_a_zip_bomb_says_it_unpacks_too_large():
    data = bomb(MAX_UNPACKED + (8 << 20))
    assert len(data) < 2 << 20
    with pytest.raises(ServiceError, match="解压后过大"):
        check_content(data)


def test_a_damaged_office_file_says_it_is_damaged():
    data = office({"[Content_Types].xml": TYPES, "xl/workbook.xml": "<w/>"})
    with pytest.raises(ServiceError, match="文件已损坏"):
        check_content(data[: len(data) // 2])


@pytest.fixture
def local_storage(app, tmp_path):
    saved = app.extensions.get("evidence_storage")
    app.extensions["evidence_storage"] = LocalStorage(tmp_path / "evidence")
    yield app.extensions["evidence_storage"]
    app.extensions["evidence_storage"] = saved


def _upload(client, record_id, data: bytes, name: str) -> str:
    response = client.post(
        f"/evidence/projects/{record_id}/upload", data={"file": (io.BytesIO(data), name)},
        content_type="multipart/form-data", follow_redirects=True,
    )  # fmt: skip
    assert response.status_code in (200, 400, 422), response.status_code
    return response.get_data(as_text=True)


def test_uploads_of_a_macro_file_and_a_bomb_are_refused_and_nothing_is_stored(app, world, as_user, local_storage):
    county = as_user("county")
    page = _upload(county, world.project_a, office(MACRO_FILES["word/vbaProject.bin"]), "方案.docx")
    assert "文件含有宏" in page
    page = _upload(county, world.project_a, bomb(MAX_UNPACKED + (8 << 20)), "台账.xlsx")
    assert "解压后过大" in page and "不接受该文件类型" not in page
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count(Attachment.id))) == 0
    assert not any(p.is_file() for p in local_storage.root.rglob("*"))
    # An ordinary one goes in.
    _upload(county, world.project_a, office({"[Content_Types].xml": TYPES, "word/document.xml": "<w/>"}), "方案.docx")
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count(Attachment.id))) == 1
