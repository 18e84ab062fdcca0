"""The roles a user may have, with their Chinese labels; ``permissions`` says what each may do and see."""

from enum import StrEnum


class Role(StrEnum):
    """What a user is; permissions.py says what each may do and see."""

    ADMIN = "admin"
    PROVINCE = "province"
    PREFECTURE = "prefecture"
    COUNTY = "county"
    LIAISON = "liaison"
    READER = "reader"

    @property
    def label(self) -> str:
        return ROLE_LABELS[self]


ROLE_LABELS = {
    Role.ADMIN: "系统管理员",
    Role.PROVINCE: "省级协作办",
    Role.PREFECTURE: "市(州)协作办",
    Role.COUNTY: "县级协作办",
    Role.LIAISON: "东部前方工作组",
    Role.READER: "只读用户(领导)",
}
