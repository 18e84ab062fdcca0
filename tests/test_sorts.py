"""Every sortable list answers every sort key of its table, ascending and descending, for every demo role that may
see it (#35: ``/assets/?sort=value`` answered 500 for everyone, its column carrying a direction of its own).

The keys come from the sort table itself, not from a copy here: the view module's ``sort_clause`` is wrapped for
the test and records the table each request passes. A list that calls ``sort_clause`` without an entry in
``LISTS`` fails ``test_every_sort_table_is_tried``; a header offering a key the table lacks (silently the default
order) fails too.
"""

import re
import sys
from pathlib import Path

import pytest

from registry import demo
from registry.permissions import PERMISSIONS
from tests.conftest import login

#: Modules using the loaded demo run on one xdist worker (``--dist loadgroup``), which loads it once.
pytestmark = pytest.mark.xdist_group("demo")

#: endpoint -> URL of every list sorted by ``registry.kernel.web.sort_clause``.
LISTS = {
    "assets.index": "/assets/",
    "auth.users": "/admin/users/",
    "counties.index": "/units/",
    "exchanges.index": "/exchanges/",
    "pairings.index": "/pairings/",
    "placements.index": "/placements/",
    "problems.index": "/problems/",
    "projects.index": "/projects/",
    "purchases.index": "/purchases/",
}

#: username -> role of each demo account.
ROLES = {username: role for username, _, role, _ in demo.USERS}

SORT_LINK = re.compile(r'<th aria-sort="[a-z]+">\s*<a href="[^"]*[?&](?:amp;)?sort=(-?[\w-]+)')


@pytest.fixture(scope="module")
def clients(demo_app):
    """A client logged in as each demo account."""
    logged_in = {}
    for username in ROLES:
        client = demo_app.test_client()
        assert login(client, username, demo.DEMO_PASSWORD).status_code in (302, 303), username
        logged_in[username] = client
    return logged_in


def test_every_sort_table_is_tried(demo_app):
    """Each ``sort_clause(`` call in the application belongs to a list of ``LISTS`` (one call per view)."""
    root = Path(__file__).resolve().parent.parent / "registry"
    calls = {}
    for path in root.rglob("*.py"):
        count = path.read_text(encoding="utf-8").count("sort_clause(") - (path.name == "web.py")
        if count:
            calls[".".join(path.relative_to(root.parent).with_suffix("").parts)] = count
    listed = {}
    for endpoint in LISTS:
        module = demo_app.view_functions[endpoint].__module__
        listed[module] = listed.get(module, 0) + 1
    assert listed == calls


@pytest.mark.parametrize("endpoint", sorted(LISTS))
def test_every_sort_key_answers_both_ways_for_every_role(demo_app, clients, endpoint, monkeypatch):
    view = demo_app.view_functions[endpoint]
    module = sys.modules[view.__module__]
    tables = []
    real = module.sort_clause

    def recording(sorts, default):
        tables.append(sorts)
        return real(sorts, default)

    monkeypatch.setattr(module, "sort_clause", recording)
    allowed = PERMISSIONS[view.permission]
    roles = [username for username, role in ROLES.items() if role in allowed]
    assert roles, endpoint
    url = LISTS[endpoint]
    first = clients[roles[0]].get(url)
    assert first.status_code == 200, f"{roles[0]} {url}: {first.status_code}"
    keys = list(tables[-1])
    offered = set(SORT_LINK.findall(first.get_data(as_text=True)))
    assert offered, f"{url} offers no sortable header"
    assert {k.lstrip("-") for k in offered} <= set(keys), f"{url} offers sorts its table lacks"
    for username in roles:
        for key in keys:
            for sort in (key, f"-{key}"):
                response = clients[username].get(url, query_string={"sort": sort})
                assert response.status_code == 200, f"{username} {url}?sort={sort}: {response.status_code}"
                if key in {k.lstrip("-") for k in offered}:
                    direction = "descending" if sort.startswith("-") else "ascending"
                    assert f'<th aria-sort="{direction}">' in response.get_data(as_text=True), (username, sort)
