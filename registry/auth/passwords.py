"""Password hashing with argon2id and the password policy (zxcvbn's strength estimate, in Chinese)."""

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from flask import current_app

#: zxcvbn refuses longer input (its matching is quadratic); 72 characters is still room for a long passphrase.
PASSWORD_MAX_LENGTH = 72

#: Words zxcvbn's English dictionaries do not know but Chinese users pick: pinyin love phrases and the "love"
#: numbers (520 = 我爱你, 1314 = 一生一世), common surnames, and this site's own words. zxcvbn treats them as a
#: dictionary ranked by position, so the most guessed come first. Without them woaini1314520 scores 3 ("safe").
CHINESE_COMMON_WORDS = (
    "woaini",
    "5201314",
    "1314520",
    "520520",
    "1314",
    "520",
    "521",
    "woaiwojia",
    "aini",
    "woai",
    "baobei",
    "laopo",
    "laogong",
    "nihao",
    "mima",
    "zhang",
    "wang",
    "li",
    "liu",
    "chen",
    "yang",
    "huang",
    "zhao",
    "wu",
    "zhou",
    "xu",
    "sun",
    "ma",
    "zhu",
    "hu",
    "guo",
    "he",
    "lin",
    "gao",
    "luo",
    "qq",
    "xiezuo",
    "dongxibu",
    "taizhang",
    "sichuan",
    "zhejiang",
    "guangdong",
)

#: zxcvbn 4.5.0's warnings and suggestions (zxcvbn/feedback.py) in Chinese; anything new falls back to GENERIC.
FEEDBACK_ZH = {
    "Use a few words, avoid common phrases.": "用几个不常连在一起的词组成密码，避免常见短语。",
    "No need for symbols, digits, or uppercase letters.": "不必强求符号、数字或大写字母，长度更重要。",
    "Add another word or two. Uncommon words are better.": "再加一两个词，越不常见越好。",
    "Straight rows of keys are easy to guess.": "键盘上连成一行的按键很容易被猜到。",
    "Short keyboard patterns are easy to guess.": "简短的键盘图案很容易被猜到。",
    "Use a longer keyboard pattern with more turns.": "键盘图案要更长、转折更多。",
    'Repeats like "aaa" are easy to guess.': "“aaa”这样的重复字符很容易被猜到。",
    'Repeats like "abcabcabc" are only slightly harder to guess than "abc".': (
        "“abcabcabc”这样的重复并不比“abc”难猜多少。"
    ),
    "Avoid repeated words and characters.": "避免重复的词和字符。",
    'Sequences like "abc" or "6543" are easy to guess.': "“abc”“6543”这样的连续序列很容易被猜到。",
    "Avoid sequences.": "避免连续序列。",
    "Recent years are easy to guess.": "近年的年份很容易被猜到。",
    "Avoid recent years.": "避免使用近年的年份。",
    "Avoid years that are associated with you.": "避免使用与自己相关的年份。",
    "Dates are often easy to guess.": "日期通常很容易被猜到。",
    "Avoid dates and years that are associated with you.": "避免使用与自己相关的日期和年份。",
    "This is a top-10 common password.": "这是最常用的前 10 个密码之一。",
    "This is a top-100 common password.": "这是最常用的前 100 个密码之一。",
    "This is a very common password.": "这是非常常见的密码。",
    "This is similar to a commonly used password.": "这与常见密码非常相似。",
    "A word by itself is easy to guess.": "单独一个词很容易被猜到。",
    "Names and surnames by themselves are easy to guess.": "单独的姓名很容易被猜到。",
    "Common names and surnames are easy to guess.": "常见的姓名很容易被猜到。",
    "Capitalization doesn't help very much.": "首字母大写作用不大。",
    "All-uppercase is almost as easy to guess as all-lowercase.": "全部大写和全部小写差不多一样好猜。",
    "Reversed words aren't much harder to guess.": "把词倒过来写并不会难猜多少。",
    "Predictable substitutions like '@' instead of 'a' don't help very much.": "用“@”代替“a”这类可预料的替换作用不大。",
}
GENERIC_FEEDBACK = "该密码容易被猜到。"
#: Words worth naming back to the user (two-letter surnames would only confuse).
_NOTABLE_CHINESE = frozenset(w for w in CHINESE_COMMON_WORDS if len(w) > 2)


def _hasher() -> PasswordHasher:
    cfg = current_app.config
    return PasswordHasher(
        time_cost=cfg["ARGON2_TIME_COST"],
        memory_cost=cfg["ARGON2_MEMORY_COST"],
        parallelism=cfg["ARGON2_PARALLELISM"],
    )


def hash_password(password: str) -> str:
    return _hasher().hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    try:
        return _hasher().verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    return _hasher().check_needs_rehash(password_hash)


def password_problem(password: str | None, *, username: str = "") -> str | None:
    """Return why ``password`` is refused, in Chinese, or None if it is acceptable.

    Beyond the length bounds, a password must not contain the username and must reach zxcvbn score
    ``PASSWORD_MIN_SCORE`` (3 of 0–4: "safely unguessable", about 10⁸ guesses and more), the estimate counting
    the username and CHINESE_COMMON_WORDS as dictionary words.
    """
    cfg = current_app.config
    if not password:
        return "请输入密码。"
    minimum = cfg["PASSWORD_MIN_LENGTH"]
    if len(password) < minimum:
        return f"密码至少需要 {minimum} 个字符。"
    if len(password) > PASSWORD_MAX_LENGTH:
        return f"密码不能超过 {PASSWORD_MAX_LENGTH} 个字符。"
    if username and username.lower() in password.lower():
        return "密码不能包含用户名。"
    # Imported here: zxcvbn loads its frequency lists (~13 MB) on import, and only setting a password needs them,
    # not every web, consumer and import process.
    from zxcvbn import zxcvbn

    result = zxcvbn(password, user_inputs=[*CHINESE_COMMON_WORDS, *([username] if username else [])])
    if result["score"] >= cfg["PASSWORD_MIN_SCORE"]:
        return None
    return "密码太容易被猜到，请换一个。" + "".join(_feedback_zh(result))


def _feedback_zh(result) -> list[str]:
    """zxcvbn's warning and suggestions in Chinese, naming any common pinyin word or number it found."""
    lines = []
    warning = result["feedback"]["warning"]
    if warning:
        lines.append(FEEDBACK_ZH.get(warning, GENERIC_FEEDBACK))
    chinese = [
        m["token"] for m in result["sequence"] if m["pattern"] == "dictionary" and m["matched_word"] in _NOTABLE_CHINESE
    ]
    if chinese:
        quoted = "、".join(f"“{token}”" for token in dict.fromkeys(chinese))
        lines.append(f"{quoted}是常见的拼音或数字组合。")
    if not lines:
        lines.append(GENERIC_FEEDBACK)
    lines += [FEEDBACK_ZH.get(s, GENERIC_FEEDBACK) for s in result["feedback"]["suggestions"]]
    return list(dict.fromkeys(lines))
