"""Password hashing with argon2id and the password policy."""

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from flask import current_app

#: A password the policy refuses outright; short list of the most guessed ones (length rule catches the rest).
COMMON_PASSWORDS = frozenset(
    {
        "1234567890",
        "12345678910",
        "0123456789",
        "1111111111",
        "0000000000",
        "qwertyuiop",
        "1q2w3e4r5t",
        "password123",
        "password1234",
        "abcd123456",
        "a123456789",
        "admin12345",
        "admin123456",
        "iloveyou123",
        "woaini1314",
        "aa123456789",
        "qq123456789",
        "abc1234567",
        "12345678abc",
        "zxcvbnm123",
    }
)


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


def password_problem(password: str, *, username: str = "") -> str | None:
    """Return why ``password`` is refused, in Chinese, or None if it is acceptable."""
    minimum = current_app.config["PASSWORD_MIN_LENGTH"]
    if len(password) < minimum:
        return f"密码至少需要 {minimum} 个字符。"
    if len(password) > 128:
        return "密码不能超过 128 个字符。"
    if password.lower() in COMMON_PASSWORDS or len(set(password)) < 4:
        return "该密码过于常见或简单，请换一个。"
    if username and username.lower() in password.lower():
        return "密码不能包含用户名。"
    return None
