"""Password hashing with argon2id and the password policy (zxcvbn's strength estimate, in Chinese)."""

import re

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

#: People's names in pinyin, most common first: the most frequent full names (张伟, 王伟, 王芳…, and the placeholder
#: names 张三, 李四), then surnames, then given names and their syllables. zxcvbn knows only English names, so
#: "Zhangwei@2024" was "safely unguessable" (score 3); ranked here, a name, a symbol and a year score 2 or less.
#: Given to zxcvbn as a frequency list of its own (``chinese_names``), beside its English ones.
CHINESE_FULL_NAMES = """
zhangwei wangwei wangfang liwei lina zhangmin lijing wangjing liuwei wangxiuying zhangli lixiuying wangli zhangjing
zhangxiuying liqiang wangmin limin wanglei liuyang wangyan wangyong lijun zhangyong lijie zhangjie zhanglei
wangqiang lijuan wangjun zhangyan zhangtao wangtao liyan wangchao liming liyong wangjuan liujie liumin lixia lili
zhangjun wangjie zhangqiang wangxiulan wanggang wangping liufang liuyan liujun liping wanghui chenjing liuyong
liling liguiying wangdan ligang lidan wangpeng liutao chenwei zhanghua liujing litao wangguiying zhangxiulan lihong
lichao liuli zhangguiying wangyulan zhangpeng lixiulan zhangchao wangling zhangling lihua wangfei zhangyulan
wangguilan wangying liuqiang chenxiuying liying lihui limei chenyong wangxin lifang zhangguilan libo yangyong
wangxia liguilan wangbin lipeng zhangping zhanghui zhangyu liujuan libin wanghao chenjie wangkai chenli chenmin
wangxiuzhen liyulan liuxiuying wangyu zhangbo liuhui yangjing chenyan zhaowei huangwei zhouwei wuwei xuwei sunwei
zhangsan lisi wangwu zhaoliu xiaoming xiaohong xiaoli xiaojun xiaoyan xiaolong xiaowei xiaohua lixiaolong
""".split()
CHINESE_SURNAMES = """
wang li zhang liu chen yang huang zhao wu zhou xu sun ma zhu hu guo he gao lin luo zheng liang xie song tang han
feng deng cao peng zeng xiao tian dong yuan pan yu jiang cai du ye cheng wei su lv lyu ding ren shen yao lu cui
zhong tan fan jin shi liao jia xia fu fang bai zou meng xiong qin qiu yin xue yan duan lei hou long tao gu mao hao
gong shao wan qian dai mo kong xiang chang kang niu ou ouyang situ zhuge shangguan
""".split()
CHINESE_GIVEN_NAMES = """
wei fang na min jing qiang lei jun yong jie tao juan chao ming xia ping gang hui hua dan peng bo bin hao kai fei
xin yu ling mei hong ying lan zhen xiu gui yun feng long hai tian jian guo zhi wen hua bing lin ning qing rui shan
xue yi zhe zhen xiaoyu tingting lili fangfang jingjing lingling yanyan dandan huihui nana xinxin yuyu haoran
zihan yuxuan zixuan yichen xinyi jianguo jianhua jianjun jianping zhiqiang guoqiang haiyan lijuan xiuying guiying
xiulan yulan guilan xiuzhen shufen yumei guihua guizhi fengying cuihua haitao hongmei chunmei xiaomei jianxin
weiguo aiguo xiao da er san li na yang jia an chen cheng dong fan shu qi shuai xiang yuan zhong song kang tong
""".split()
#: Years as people write them in passwords (birth years, this year), the most recent first: zxcvbn's own pattern
#: knows only 1900–2019, so 2024 was an unknown four-digit number.
YEARS = [str(y) for y in range(2035, 1939, -1)]
PINYIN_NAMES = tuple(dict.fromkeys(CHINESE_FULL_NAMES + CHINESE_SURNAMES + CHINESE_GIVEN_NAMES))
#: A surname followed by one or two given-name syllables (赵磊, 王.建国, zhangxiaoyu), anywhere in a password.
_NAME_RE = re.compile(
    "(?:{})[._\\-]?(?:{}){{1,2}}".format(
        "|".join(sorted(set(CHINESE_SURNAMES), key=len, reverse=True)),
        "|".join(sorted(set(CHINESE_GIVEN_NAMES), key=len, reverse=True)),
    ),
    re.IGNORECASE,
)


def names_in(password: str) -> list[str]:
    """The pinyin names a password is made of (lower case, as zxcvbn matches them). Surname and given name together
    are as guessable as the commonest full names: an attacker tries names, so the checker ranks each found one
    first among its words. Without it zhaolei_1995 was three matches (zhao, lei, a year), which zxcvbn's cost of
    every further match put at "safe"."""
    return list(dict.fromkeys(m.group(0).lower() for m in _NAME_RE.finditer(password)))


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
    as dictionary words the pinyin names found in it (``names_in``), CHINESE_COMMON_WORDS and the username, and
    zxcvbn's lists extended with pinyin names and years (``_zxcvbn``).
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
    words = [*names_in(password), *CHINESE_COMMON_WORDS, *([username] if username else [])]
    zxcvbn = _zxcvbn()
    result = zxcvbn(password, user_inputs=words)
    if result["score"] >= cfg["PASSWORD_MIN_SCORE"]:
        names = names_in(password)
        rest = _NAME_RE.sub("", password)
        if not names or re.search(r"[^\W\d_]", rest) or zxcvbn(rest)["score"] >= cfg["PASSWORD_MIN_SCORE"]:
            return None
        # A name and nothing but digits and symbols: the name adds next to nothing (an attacker tries names
        # first), so what is left must be strong by itself ("Hujun1970!!" scored just above the line).
        quoted = "、".join(f"“{m.group(0)}”" for m in _NAME_RE.finditer(password))
        return f"密码太容易被猜到，请换一个。{quoted}是常见的姓名拼音，其余的数字和符号太简单。"
    return "密码太容易被猜到，请换一个。" + "".join(_feedback_zh(result, names_in(password)))


def _zxcvbn():
    """zxcvbn, with the pinyin names and the years added to its dictionaries (once a process)."""
    # Imported here: zxcvbn loads its frequency lists (~13 MB) on import, and only setting a password needs them,
    # not every web, consumer and import process.
    from zxcvbn import matching, zxcvbn

    if "chinese_names" not in matching.RANKED_DICTIONARIES:
        matching.add_frequency_lists({"chinese_names": list(PINYIN_NAMES), "years": YEARS})
    return zxcvbn


def _feedback_zh(result, names=()) -> list[str]:
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
    for dictionary, sentence in (
        ("chinese_names", "是常见的姓名拼音，很容易被猜到。"),
        ("years", "是年份，很容易被猜到。"),
    ):
        named = (
            {m.get("matched_word") for m in result["sequence"]} & set(names) if dictionary == "chinese_names" else set()
        )
        tokens = [
            m["token"]
            for m in result["sequence"]
            if m.get("dictionary_name") == dictionary or m.get("matched_word") in named
        ]
        if tokens:
            lines.append("、".join(f"“{token}”" for token in dict.fromkeys(tokens)) + sentence)
    if not lines:
        lines.append(GENERIC_FEEDBACK)
    lines += [FEEDBACK_ZH.get(s, GENERIC_FEEDBACK) for s in result["feedback"]["suggestions"]]
    return list(dict.fromkeys(lines))
