"""Resident identity numbers (身份证号, GB 11643-1999): validation, derived sex and age, masking, protection at rest.

With ``ID_NUMBER_KEY`` configured (a Fernet key), numbers are stored encrypted and matched through a keyed
HMAC, so the database alone never shows them in clear; without a key they are stored as typed (a development
or single-machine install) and matched through a plain SHA-256. Nothing here logs or prints a number.
"""

import base64
import hashlib
import hmac
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


@dataclass(frozen=True)
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


def check_digit(first17: str) -> str:
    return CHECK_DIGITS[sum(int(d) * w for d, w in zip(first17, WEIGHTS, strict=True)) % 11]


def parse(text: str, *, today: date | None = None) -> IdNumber:
    """Validate an 18-digit number (lower-case x and surrounding/full-width spaces accepted)."""
    number = (text or "").strip().replace("\u3000", "").replace(" ", "").upper()
    number = number.translate(str.maketrans("０１２３４５６７８９Ｘ", "0123456789X"))
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


def _key() -> bytes | None:
    key = current_app.config.get("ID_NUMBER_KEY")
    return key.encode() if isinstance(key, str) else key


def protect(number: str) -> str:
    """The value stored in the database: Fernet ciphertext with a key, the number itself without one."""
    key = _key()
    return Fernet(key).encrypt(number.encode()).decode() if key else number


def reveal(stored: str) -> str:
    """The number from its stored form (for permitted, audited views and exports only)."""
    key = _key()
    if not key:
        return stored
    try:
        return Fernet(key).decrypt(stored.encode()).decode()
    except InvalidToken as exc:
        raise IdNumberError("身份证号无法解密：加密密钥与保存时不一致。") from exc


def fingerprint(number: str) -> str:
    """A stable, non-reversible key for matching the same person (duplicates, re-imports)."""
    key = _key()
    if key:
        mac_key = hashlib.sha256(b"registry-id-fingerprint:" + base64.urlsafe_b64decode(key)).digest()
        return hmac.new(mac_key, number.encode(), hashlib.sha256).hexdigest()
    return hashlib.sha256(number.encode()).hexdigest()
