"""The office's signature on a report of record (pyHanko), with the certificate it is made with.

A real certificate is configured as a PKCS#12 file (``SIGNING_PKCS12`` and ``SIGNING_PASSPHRASE``). Without one, a
self-signed certificate in the office's name is generated into ``instance/signing.p12`` on first use (its passphrase
in ``instance/signing.pass``, both mode 600), like the secret key: the signature then proves the PDF is unchanged
since this installation signed it, not who the office is to a third party.
"""

import asyncio
import io
import os
import secrets
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

from flask import current_app

P12_FILE = "signing.p12"
PASS_FILE = "signing.pass"

_lock = threading.Lock()
_signers: dict = {}


class SigningError(RuntimeError):
    """The configured certificate cannot be loaded (a wrong passphrase, a missing file)."""


def _write_private(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(data)


def generate_self_signed(p12_path: Path, pass_path: Path, common_name: str) -> None:
    """Write a self-signed RSA-2048 document-signing certificate and its key as PKCS#12 (mode 600)."""
    # Imported here: needed once per installation, not on every start of the app.
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.hazmat.primitives.serialization import pkcs12
    from cryptography.x509.oid import NameOID

    DOCUMENT_SIGNING = x509.ObjectIdentifier("1.3.6.1.5.5.7.3.36")  # id-kp-documentSigning (RFC 9336)

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "CN"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, common_name[:64]),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name[:64]),
        ]
    )
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=True,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),  # fmt: skip
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([DOCUMENT_SIGNING]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    passphrase = secrets.token_urlsafe(32).encode()
    data = pkcs12.serialize_key_and_certificates(
        b"registry-signing", key, cert, None, serialization.BestAvailableEncryption(passphrase)
    )
    _write_private(pass_path, passphrase)
    _write_private(p12_path, data)


def _configured() -> tuple[Path, bytes]:
    """The PKCS#12 path and passphrase in use, generating the self-signed pair on first use."""
    config = current_app.config
    if config.get("SIGNING_PKCS12"):
        passphrase = config.get("SIGNING_PASSPHRASE") or ""
        return Path(config["SIGNING_PKCS12"]), passphrase.encode() if isinstance(passphrase, str) else passphrase
    folder = Path(current_app.instance_path)
    p12, pass_file = folder / P12_FILE, folder / PASS_FILE
    with _lock:
        if not p12.exists():
            generate_self_signed(p12, pass_file, config["ORG_NAME"])
    return p12, pass_file.read_bytes().strip()


def signer():
    """The pyHanko signer of the configured certificate, loaded once per file and passphrase."""
    # pyHanko is imported on the first signature: slow to import, and most processes never sign.
    from pyhanko.sign import signers

    path, passphrase = _configured()
    key = (str(path), path.stat().st_mtime_ns if path.exists() else 0)
    if key not in _signers:
        try:
            loaded = signers.SimpleSigner.load_pkcs12_data(path.read_bytes(), other_certs=[], passphrase=passphrase)
        except (OSError, ValueError) as exc:
            raise SigningError(f"无法读取签名证书 {path}：{exc}") from exc
        _signers[key] = loaded
    return _signers[key]


def signer_name() -> str:
    """The certificate subject as printed and stored ("CN=四川省东西部协作工作办公室,…")."""
    return signer().signing_cert.subject.human_friendly


def certificate_der() -> bytes:
    """The signing certificate (DER), e.g. to trust it when validating."""
    return signer().signing_cert.dump()


def sign_pdf(pdf: bytes, *, reason: str, location: str = "") -> bytes:
    """``pdf`` with an (invisible) signature of the office's certificate, appended as an incremental update."""
    # pyHanko is imported on the first signature: slow to import, and most processes never sign.
    from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
    from pyhanko.sign import signers

    office = signer()  # read here: it needs the application's configuration

    def sign() -> bytes:
        writer = IncrementalPdfFileWriter(io.BytesIO(pdf), strict=False)
        meta = signers.PdfSignatureMetadata(field_name="Signature1", reason=reason, location=location)
        return signers.sign_pdf(writer, meta, signer=office).getvalue()

    return outside_event_loop(sign)


def outside_event_loop(call):
    """Run ``call`` where no asyncio event loop is running: pyHanko's synchronous API runs one of its own
    (``asyncio.run``), which fails inside a thread that already has one (an ASGI server, a test browser)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return call()
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(call).result()
