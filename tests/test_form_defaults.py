"""Forms that start where the user is (issue 26 item 4): a new account with the least privilege, and a county
clerk's own county chosen wherever a new record asks for a county."""

import re

import pytest


def _selected(html: str, name: str) -> str | None:
    select = re.search(rf'<select[^>]*name="{name}"[^>]*>(.*?)</select>', html, re.S)
    assert select is not None, name
    for option in re.findall(r"<option[^>]*>", select.group(1)):
        if re.search(r"\sselected[\s>=]", option):
            return re.search(r'value="([^"]*)"', option).group(1)
    return None


def test_a_new_account_starts_as_a_reader(as_user):
    assert _selected(as_user("admin").get("/admin/users/new").get_data(as_text=True), "role") == "reader"


@pytest.mark.parametrize(
    ("url", "field"),
    [("/placements/new", "origin_county_id"), ("/purchases/new", "seller_county_id"), ("/projects/new", "county_id")],
)
def test_a_county_clerks_own_county_is_chosen(world, as_user, url, field):
    assert _selected(as_user("county").get(url).get_data(as_text=True), field) == str(world.zhaojue)
    # Staff with many counties choose one themselves.
    assert _selected(as_user("prefecture").get(url).get_data(as_text=True), field) in (None, "")
