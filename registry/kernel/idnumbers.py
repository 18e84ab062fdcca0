"""Resident identity numbers (身份证号, GB 11643-1999): validation, derived sex and age, masking, protection at rest.

Numbers are stored encrypted with ``ID_NUMBER_KEY`` (a Fernet key, generated into instance/ on first run when not
configured; see ``kernel.config.load_id_number_key``) and matched through a fingerprint: HMAC-SHA256 under a key
derived from the same ``ID_NUMBER_KEY``. A bare SHA-256 would not do: identity numbers are few enough (region,
birth date, three digits) to hash every candidate, so an unkeyed hash is as good as the number to anyone with a
copy of the database.

Why the fingerprint key is derived rather than kept in a file of its own: it protects the numbers just as much as
the encryption key does (with it, every fingerprint can be brute-forced back to its number), so a leaked key means
replacing both, and one secret is one thing to keep, back up and rotate. The price is that rotating the key
changes every fingerprint; ``registry.placements.rotation`` recomputes them with the ciphertexts, in the same
transaction, keeping each person's id.

Databases from before the key may still hold numbers as typed: ``reveal`` reads those as they are, and
``flask idnumbers encrypt`` encrypts them. Nothing here logs or prints a number.
"""

import base64
import hashlib
import hmac
import operator
import re
from dataclasses import dataclass
from datetime import date

from cryptography.fernet import Fernet, InvalidToken
from flask import current_app

WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
CHECK_DIGITS = "10X98765432"
#: First two digits of every province-level division (GB/T 2260), 台湾 71, 香港 81, 澳门 82.
PROVINCE_CODES = {
    "11", "12", "13", "14", "15", "21", "22", "23", "31", "32", "33", "34", "35", "36", "37", "41", "42", "43",
    "44", "45", "46", "50", "51", "52", "53", "54", "61", "62", "63", "64", "65", "71", "81", "82",
}  # fmt: skip
_SHAPE = re.compile(r"^\d{17}[\dX]$")


class IdNumberError(ValueError):
    """The text is not a valid identity number; the message says why, in Chinese (without echoing it)."""


@dataclass(frozen=True, slots=True)
class IdNumber:
    number: str
    birth_date: date
    #: 男 or 女, from the parity of the 17th digit.
    sex: str

    def age_on(self, day: date) -> int:
        years = day.year - self.birth_date.year
        return years - ((day.month, day.day) < (self.birth_date.month, self.birth_date.day))

    @property
    def masked(self) -> str:
        return mask(self.number)


#: Full-width digits and Ｘ, as some input methods type them.
_FULL_WIDTH = str.maketrans("０１２３４５６７８９Ｘ", "0123456789X")


def check_digit(first17: str) -> str:
    if len(first17) != 17:
        raise ValueError("check_digit takes the first 17 digits")
    return CHECK_DIGITS[sum(map(operator.mul, map(int, first17), WEIGHTS)) % 11]


def parse(text: str, *, today: date | None = None) -> IdNumber:
    """Validate an 18-digit number (lower-case x and surrounding/full-width spaces accepted)."""
    number = (text or "").strip().replace("\u3000", "").replace(" ", "").upper()
    number = number.translate(_FULL_WIDTH)
    if not number:
        raise IdNumberError("请填写身份证号。")
    if len(number) != 18 or not _SHAPE.match(number):
        raise IdNumberError("身份证号应为 18 位：前 17 位为数字，最后一位为数字或 X。")
    if number[:2] not in PROVINCE_CODES:
        raise IdNumberError("身份证号前两位不是有效的省级行政区划代码。")
    try:
        birth = date(int(number[6:10]), int(number[10:12]), int(number[12:14]))
    except ValueError as exc:
        raise IdNumberError("身份证号中的出生日期无效。") from exc
    if birth.year < 1900 or birth > (today or date.today()):
        raise IdNumberError("身份证号中的出生日期不在合理范围内。")
    if check_digit(number[:17]) != number[17]:
        raise IdNumberError("身份证号校验位不正确，请核对是否输错。")
    return IdNumber(number=number, birth_date=birth, sex="男" if int(number[16]) % 2 else "女")


def mask(number: str) -> str:
    """5134**********123X: the region's first four digits and the last four only."""
    return f"{number[:4]}{'*' * 10}{number[-4:]}" if len(number) == 18 else "*" * len(number)


def is_plain(stored: str) -> bool:
    """Stored as typed (before numbers were encrypted), not a Fernet token (which never has this shape)."""
    return bool(_SHAPE.match(stored))


def _key(key: str | bytes | None = None) -> bytes:
    key = key or current_app.config.get("ID_NUMBER_KEY")
    if not key:
        # create_app always sets one (configured, read or generated); only a hand-made app can get here.
        raise RuntimeError("ID_NUMBER_KEY 未设置：身份证号不能以明文保存。")
    return key.encode() if isinstance(key, str) else key


def protect(number: str, key: str | bytes | None = None) -> str:
    """The value stored in the database: Fernet ciphertext under ``key`` (the configured key by default)."""
    return Fernet(_key(key)).encrypt(number.encode()).decode()


def protector(key: str | bytes | None = None):
    """``protect`` for many numbers (an import): the Fernet of the key is built once."""
    fernet = Fernet(_key(key))
    return lambda number: fernet.encrypt(number.encode()).decode()


def reveal(stored: str) -> str:
    """The number from its stored form (for permitted, audited views and exports only)."""
    if is_plain(stored):
        return stored  # stored before encryption; `flask idnumbers encrypt` turns these into ciphertext
    try:
        return Fernet(_key()).decrypt(stored.encode()).decode()
    except InvalidToken as exc:
        raise IdNumberError("身份证号无法解密：加密密钥与保存时不一致。") from exc


def fingerprint_key(key: str | bytes | None = None) -> bytes:
    """The HMAC key of the fingerprints, derived from the Fernet key (the derivation predates key generation:
    databases that already had a configured key keep their fingerprints)."""
    return hashlib.sha256(b"registry-id-fingerprint:" + base64.urlsafe_b64decode(_key(key))).digest()


def fingerprint(number: str, key: str | bytes | None = None) -> str:
    """A stable, non-reversible key for matching the same person (duplicates, re-imports): HMAC-SHA256 of the
    number under ``fingerprint_key`` — never a bare hash, which a list of all possible numbers would invert."""
    return keyed_fingerprint(fingerprint_key(key), number)


def keyed_fingerprint(mac_key: bytes, number: str) -> str:
    """``fingerprint`` with the HMAC key already derived (for loops over many numbers)."""
    return hmac.new(mac_key, number.encode(), hashlib.sha256).hexdigest()
