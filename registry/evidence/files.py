"""What an uploaded file really is, read from its bytes (never from its name or the browser's type), and the
name it may be offered under.

Allowed: PDF, JPEG and PNG images (re-encoded with Pillow: any trailing script is dropped and EXIF, GPS
positions included, is stripped), and Word/Excel files of the zip-based formats (docx, xlsx) without macros.
Anything else — a script or a page renamed .jpg, an old .doc, an archive, a macro-enabled file renamed .docx, a
"zip bomb" — is refused with a Chinese message saying what is wrong.
"""

import hashlib
import io
import re
import unicodedata
import zipfile
from dataclasses import dataclass

from PIL import Image, ImageOps, UnidentifiedImageError

from registry.kernel.services import ServiceError

ALLOWED_TEXT = "PDF、JPEG/PNG 图片、Word（docx）或 Excel（xlsx）"
#: An image larger than this many pixels is refused before it is decoded (a "decompression bomb").
MAX_PIXELS = 50_000_000
CHUNK = 1024 * 1024


@dataclass(frozen=True)
class Checked:
    data: bytes
    content_type: str
    extension: str

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()


def read_limited(stream, limit: int) -> bytes:
    """Read ``stream`` in 1 MB chunks, refusing as soon as it passes ``limit`` bytes (so a huge upload is never
    read whole)."""
    chunks, size = [], 0
    while True:
        chunk = stream.read(CHUNK)
        if not chunk:
            break
        size += len(chunk)
        if size > limit:
            raise ServiceError(f"文件超过 {limit // (1024 * 1024)} MB 的大小限制，未保存。", "file")
        chunks.append(chunk)
    if not size:
        raise ServiceError("请选择要上传的文件（文件不能为空）。", "file")
    return b"".join(chunks)


#: Largest total a docx or xlsx may unpack to (its entries' declared sizes): above it, a "zip bomb".
MAX_UNPACKED = 256 * 1024 * 1024
#: Most entries a docx or xlsx may hold (a real one has tens; an archive of millions takes long to list).
MAX_ENTRIES = 10_000
#: Parts that hold a VBA project (macros), in any Office format: word/, xl/, ppt/ and the rest.
_MACRO_PARTS = re.compile(r"(^|/)vbaProject\.bin$|(^|/)vbaData\.xml$", re.IGNORECASE)
_MACRO_TYPES = (b"vbaproject", b"macroenabled")
MACROS = "文件含有宏（VBA 代码），出于安全考虑不接受；请在 Word/Excel 中另存为不含宏的 .docx 或 .xlsx 后再上传。"


def _office(data: bytes) -> tuple[str, str] | None:
    """The type of an Office Open XML file (docx, xlsx), or None for another zip. Refused with what is wrong:
    a damaged archive, one that unpacks too large or holds too many entries, and any file with macros."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        infos = archive.infolist()
    except (zipfile.BadZipFile, ValueError, OSError, EOFError) as exc:
        raise ServiceError("文件已损坏：无法作为 Word/Excel（docx、xlsx）文件读取，未保存。", "file") from exc
    if len(infos) > MAX_ENTRIES:
        raise ServiceError(f"文件内部包含的部件过多（{len(infos)} 个），不像正常的 Word/Excel 文件，未保存。", "file")
    unpacked = sum(info.file_size for info in infos)
    if unpacked > MAX_UNPACKED:
        raise ServiceError(
            f"文件解压后过大（约 {unpacked // (1024 * 1024)} MB，上限 {MAX_UNPACKED // (1024 * 1024)} MB），"
            "可能是恶意构造的压缩文件，未保存。",
            "file",
        )
    names = {info.filename for info in infos}
    if "[Content_Types].xml" not in names:
        return None
    if any(_MACRO_PARTS.search(name) for name in names):
        raise ServiceError(MACROS, "file")
    try:
        with archive.open("[Content_Types].xml") as part:
            types = part.read(1024 * 1024).lower()  # a few kB in a real file
    except (zipfile.BadZipFile, ValueError, OSError, EOFError, NotImplementedError) as exc:
        raise ServiceError("文件已损坏：无法作为 Word/Excel（docx、xlsx）文件读取，未保存。", "file") from exc
    if any(marker in types for marker in _MACRO_TYPES):  # a macro-enabled type (docm, xlsm) renamed
        raise ServiceError(MACROS, "file")
    if "word/document.xml" in names:
        return "application/vnd.openxmlformats-officedocument.wordprocessingml.document", "docx"
    if "xl/workbook.xml" in names:
        return "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", "xlsx"
    return None


def _image(data: bytes, fmt: str) -> bytes:
    """Decode and re-encode the image: only pixels survive (no EXIF/GPS, no appended payload)."""
    try:
        with Image.open(io.BytesIO(data)) as probe:
            if probe.format != fmt:
                raise ServiceError("图片内容与其格式不符，未保存。", "file")
            if probe.width * probe.height > MAX_PIXELS:
                raise ServiceError("图片像素过多，未保存；请缩小后再上传。", "file")
        with Image.open(io.BytesIO(data)) as image:
            image = ImageOps.exif_transpose(image)
            out = io.BytesIO()
            if fmt == "JPEG":
                image.convert("RGB").save(out, "JPEG", quality=90)
            else:
                image.save(out, "PNG", optimize=True)
            return out.getvalue()
    except ServiceError:
        raise
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise ServiceError("图片文件已损坏或不是真正的图片，未保存。", "file") from exc


def check_content(data: bytes) -> Checked:
    """The file's real type from its first bytes (and structure); :raise ServiceError: when not allowed."""
    if data.startswith(b"%PDF-"):
        return Checked(data, "application/pdf", "pdf")
    if data.startswith(b"\xff\xd8\xff"):
        return Checked(_image(data, "JPEG"), "image/jpeg", "jpg")
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return Checked(_image(data, "PNG"), "image/png", "png")
    if data.startswith(b"PK\x03\x04"):
        office = _office(data)
        if office:
            return Checked(data, *office)
    raise ServiceError(f"不接受该文件类型：系统按文件内容（而非扩展名）判断，只接受 {ALLOWED_TEXT} 文件。", "file")


_UNSAFE = re.compile(r'[\x00-\x1f\x7f"*:<>?|;]')


def clean_name(original: str, extension: str) -> str:
    """The uploaded name made harmless for display and ``Content-Disposition``: the last path part only, no
    control or shell/Windows-reserved characters, no leading dots, at most 80 characters, and the extension of the
    type found in the content ("../../etc/passwd.jpg" holding a PDF becomes "passwd.pdf")."""
    name = unicodedata.normalize("NFC", original or "")
    name = re.split(r"[/\\]", name)[-1]
    name = _UNSAFE.sub("", name).strip().lstrip(".").strip()
    stem = name.rsplit(".", 1)[0] if "." in name else name
    stem = stem.strip(" .")[:80] or "附件"
    return f"{stem}.{extension}"
