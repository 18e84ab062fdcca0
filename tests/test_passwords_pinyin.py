"""Passwords made of a name in pinyin and a year (#24 section 4): "Zhangwei@2024" was accepted. The strength check
knows common Chinese surnames and given names in pinyin and the years people write, and refuses such passwords in
Chinese; good passphrases still pass. Also through the account page, on either engine."""

import re

import pytest

from registry.auth.passwords import names_in, password_problem
from tests.conftest import PASSWORD

#: Name + symbol + year or digits, as offices' staff write them (surname first, any capitals, any separator).
NAME_AND_YEAR = """
Zhangwei@2024 zhangwei2024 Wangfang1988! Liuyang@123456 LiNa@1990! Chenjing#2023 Xiaoming2000 Zhaolei_1995
Huangwei@2019 Wanglei.2022 zhangsan123456 Lixiaolong1988 Zhaojun#2021 liuxin2008! Wang.Jianguo1966
ZhangXiaoyu@2010 Gaojianjun2020 LiuHaitao@88 chenyun#1975 Songjia2026! Yangmei@1999 ZhouJie2025 Sunli@1986
Heping_2008 MaHui#2030 Xuwei-2017 Guolin@2005 Hujun1970!! Zhengqiang@2012 DengXiaoping1904
""".split()


@pytest.mark.parametrize("password", NAME_AND_YEAR)
def test_a_name_in_pinyin_with_a_year_is_refused_in_chinese(app, password):
    with app.app_context():
        problem = password_problem(password, username="someone")
    assert problem is not None, password
    assert problem.startswith("密码太容易被猜到，请换一个。")
    assert not re.search("[A-Za-z]", re.sub("“[^”]*”", "", problem)), problem


def test_the_refusal_names_the_name_and_the_year(app):
    with app.app_context():
        problem = password_problem("Zhangwei@2024", username="someone")
    assert "“Zhangwei”是常见的姓名拼音" in problem, problem
    with app.app_context():
        assert "“2024”是年份" in password_problem("zhangwei2024", username="someone")
        assert "“Hujun”是常见的姓名拼音" in password_problem("Hujun1970!!", username="someone")


@pytest.mark.parametrize(
    "password",
    [PASSWORD, "a good passphrase", "Liangshan peppers in May", "correct horse battery staple",
     "Pepper trees of Zhaojue 2024", "7fK#p2xQ!vR9", "Changing tides at dawn", "fresh passphrase 1",
     "mountain tea, river stones, 17 bridges", "Zhangwei#83!19$27q"],
)  # fmt: skip
def test_good_passphrases_still_pass(app, password):
    with app.app_context():
        assert password_problem(password, username="someone") is None


def test_names_are_found_with_their_separators():
    assert names_in("Wang.Jianguo1966") == ["wang.jianguo"]
    assert names_in("x-ZhangXiaoyu@2010") == ["zhangxiaoyu"]
    assert names_in("7fK#p2xQ!vR9") == []


def test_the_account_page_refuses_a_name_and_a_year(app, world, as_user):
    client = as_user("county")
    response = client.post(
        "/account/password",
        data={"current_password": PASSWORD, "new_password": "Zhangwei@2024", "confirm": "Zhangwei@2024"},
    )
    assert "密码太容易被猜到" in response.get_data(as_text=True)
