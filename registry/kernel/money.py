"""Exact money: integer 分 in the database, 元 typed in forms, 万元 (county) and 亿元 (province) on screen."""

import re
import unicodedata
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from wtforms import StringField

#: Largest amount accepted anywhere: 1,000 亿元 — far above any single record, well inside BIGINT.
MAX_FEN = 100_000_000_000 * 100
_NUMBER = re.compile(r"^-?\d+(\.\d+)?$")


class MoneyError(ValueError):
    """The text is not an amount; the message says why, in Chinese."""


def parse_wan(text) -> int:
    """Read an amount in 万元 (agreement targets are written so: 3900, 5187.5) into 分; at most 6 decimals."""
    cleaned = unicodedata.normalize("NFKC", str(text or "")).strip().replace(",", "").removesuffix("万元").strip()
    if not cleaned:
        raise MoneyError("请填写金额。")
    if len(cleaned) > 20 or not _NUMBER.match(cleaned):
        raise MoneyError(f"“{text}”不是有效的金额，请填写数字（单位：万元），例如 3900 或 5187.5。")
    value = Decimal(cleaned) * 10000
    if value != value.quantize(Decimal("0.01")):
        raise MoneyError(f"金额“{text}”万元精确到分时最多保留六位小数。")
    if value < 0:
        raise MoneyError("金额不能为负数。")
    return parse_yuan(value)


def parse_yuan(text, *, allow_negative: bool = False) -> int:
    """Read an amount in 元 ("1,234.56", "１２３４.5", "1234") into 分; refuse more than two decimals."""
    if text is None:
        raise MoneyError("请填写金额。")
    if isinstance(text, int | Decimal):
        value = Decimal(text)
    else:
        cleaned = unicodedata.normalize("NFKC", str(text)).strip().replace(",", "").replace("，", "")
        cleaned = cleaned.removesuffix("元").strip()
        if not cleaned:
            raise MoneyError("请填写金额。")
        if len(cleaned) > 20 or not _NUMBER.match(cleaned):
            raise MoneyError(f"“{text}”不是有效的金额，请填写数字（单位：元），例如 12500.00。")
        try:
            value = Decimal(cleaned)
        except InvalidOperation as exc:
            raise MoneyError(f"“{text}”不是有效的金额。") from exc
    if value != value.quantize(Decimal("0.01")):
        raise MoneyError(f"金额“{text}”最多保留两位小数（精确到分）。")
    fen = int(value * 100)
    if fen < 0 and not allow_negative:
        raise MoneyError("金额不能为负数。")
    if abs(fen) > MAX_FEN:
        raise MoneyError("金额超出允许范围（不超过 1000 亿元）。")
    return fen


def _scaled(fen: int, divisor: int, places: int) -> Decimal:
    return (Decimal(fen) / divisor).quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)


def yuan(fen: int | None) -> str:
    """Exact 元 with thousands separators: 1,234,567.89."""
    if fen is None:
        return ""
    return f"{_scaled(fen, 100, 2):,}"


def wan(fen: int | None, places: int = 2) -> str:
    """万元, as county-level tables show money: 1234.57."""
    if fen is None:
        return ""
    return f"{_scaled(fen, 1_000_000, places):,}"


def yi(fen: int | None, places: int = 2) -> str:
    """亿元, as province-level summaries show money: 33.10."""
    if fen is None:
        return ""
    return f"{_scaled(fen, 10_000_000_000, places):,}"


# ---- display: one rule for every page and report ------------------------------------------------------------------

WAN_YUAN, YI_YUAN = "万元", "亿元"
#: Report levels: a county's and a prefecture's money is read in 万元, the province's in 亿元.
LEVELS = ("county", "prefecture", "province")
_DIVISORS = {WAN_YUAN: 1_000_000, YI_YUAN: 10_000_000_000}


def money_unit(level: str, *amounts: int | None) -> str:
    """The unit a table (or a summary row) of ``level`` shows money in, given every amount it prints.

    万元 at county and prefecture level. At province level 亿元 when the largest amount reaches 1 亿元 and no amount
    but zero is under 0.01 亿元; otherwise 万元, since two decimals of 亿元 would print a liaison's share, an early
    quarter or a small line (a legacy programme's 30 万元) as 0.00. The unit is printed in the table's header or
    caption, never left for the reader to guess.
    """
    if level not in LEVELS:
        raise ValueError(f"未知的金额层级：{level}")
    if level != "province":
        return WAN_YUAN
    present = [abs(a) for a in amounts if a]
    if not present or max(present) < _DIVISORS[YI_YUAN] or min(present) < _DIVISORS[YI_YUAN] // 100:
        return WAN_YUAN
    return YI_YUAN


def money(fen: int | None, unit: str = WAN_YUAN) -> str:
    """An amount as every table shows it: in ``unit`` (万元 or 亿元), two decimals, thousands separators;
    "—" when there is no figure."""
    if fen is None:
        return "—"
    if unit not in _DIVISORS:
        raise ValueError(f"未知的金额单位：{unit}")
    return f"{_scaled(fen, _DIVISORS[unit], 2):,}"


def count(number: int | None) -> str:
    """A count of people, projects or records with thousands separators (12,345); "—" when there is none."""
    return "—" if number is None else f"{int(number):,}"


def part_label(name: str) -> str:
    """An indicator that is part of another (其中脱贫劳动力 ⊂ 帮助农村劳动力就业人数), labelled "其中：…" exactly once,
    whether or not its stored name already begins with 其中."""
    return "其中：" + name.removeprefix("其中").lstrip("：: ")


def rate(numerator: int | None, denominator: int | None, places: int = 2) -> Decimal | None:
    """A percentage, exact until the final rounding; None where the denominator is zero or unknown."""
    if numerator is None or not denominator:
        return None
    return (Decimal(numerator) * 100 / Decimal(denominator)).quantize(Decimal(1).scaleb(-places), ROUND_HALF_UP)


def percent(value: Decimal | None) -> str:
    return "—" if value is None else f"{value}%"


class MoneyField(StringField):
    """A text input for 元 whose data is integer 分 (None when left blank)."""

    def __init__(self, label=None, validators=None, allow_negative=False, **kwargs):
        super().__init__(label, validators, **kwargs)
        self.allow_negative = allow_negative

    def process_formdata(self, valuelist):
        self.data = None
        if valuelist and valuelist[0] is not None and str(valuelist[0]).strip():
            try:
                self.data = parse_yuan(valuelist[0], allow_negative=self.allow_negative)
            except MoneyError as exc:
                self.data = None
                raise ValueError(str(exc)) from exc

    def _value(self):
        if self.raw_data:
            return self.raw_data[0]
        return "" if self.data is None else f"{_scaled(self.data, 100, 2)}"
