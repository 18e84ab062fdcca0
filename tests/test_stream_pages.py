"""The stream kit (registry/kernel/pages.py): the standard pages it registers stand where the hand-written views
stood, belong to their stream's module, and go through the gate the stream hands in."""

import pytest

from registry import permissions
from registry.exchanges.models import Exchange
from registry.kernel import pages as kit

#: endpoint -> (URL rule, methods, permission) of every page the kit registers, as the hand-written views had them.
KIT_PAGES = {
    **{
        f"{stream}.{endpoint}": (f"/{stream}{path}", methods, permission)
        for stream, key, edit in (
            ("exchanges", "exchange_id", "exchanges.edit"),
            ("purchases", "purchase_id", "purchases.edit"),
            ("placements", "placement_id", "placements.edit"),
            ("projects", "project_id", "projects.edit"),
        )
        for endpoint, path, methods, permission in (
            ("index", "/", {"GET"}, "records.view"),
            ("export", "/export.<any(xlsx, csv):kind>", {"GET"}, "records.view"),
            ("detail", f"/<int:{key}>", {"GET"}, "records.view"),
            ("create", "/new", {"GET", "POST"}, edit),
            ("edit", f"/<int:{key}>/edit", {"GET", "POST"}, edit),
            ("template", "/template.xlsx", {"GET"}, "records.view"),
            ("import_", "/import", {"GET", "POST"}, edit),
        )
    },
    **{
        f"problems.{endpoint}": (f"/problems{path}", methods, permission)
        for endpoint, path, methods, permission in (
            ("index", "/", {"GET"}, "records.view"),
            ("detail", "/<int:problem_id>", {"GET"}, "records.view"),
            ("create", "/new", {"GET", "POST"}, "problems.edit"),
            ("edit", "/<int:problem_id>/edit", {"GET", "POST"}, "problems.edit"),
            ("template", "/template.xlsx", {"GET"}, "records.view"),
            ("import_", "/import", {"GET", "POST"}, "problems.edit"),
        )
    },
    **{
        f"assets.{endpoint}": (f"/assets{path}", methods, permission)
        for endpoint, path, methods, permission in (
            ("index", "/", {"GET"}, "records.view"),
            ("export", "/export.<any(xlsx, csv):kind>", {"GET"}, "records.view"),
            ("detail", "/<int:asset_id>", {"GET"}, "records.view"),
            ("template", "/template.xlsx", {"GET"}, "records.view"),
            ("import_", "/import", {"GET", "POST"}, "projects.edit"),
        )
    },
    "disclosure.index": ("/disclosure/", {"GET"}, "records.view"),
    "disclosure.detail": ("/disclosure/<int:notice_id>", {"GET"}, "records.view"),
    "projects.export_funds": ("/projects/funds/export.<any(xlsx, csv):kind>", {"GET"}, "records.view"),
    "projects.funds_template": ("/projects/funds/template.xlsx", {"GET"}, "records.view"),
    "projects.import_funds": ("/projects/funds/import", {"GET", "POST"}, "projects.edit"),
    "agreements.create": ("/agreements/new", {"GET", "POST"}, "agreements.manage"),
    "agreements.edit": ("/agreements/<int:agreement_id>/edit", {"GET", "POST"}, "agreements.manage"),
    "agreements.targets_template": ("/agreements/targets/template.xlsx", {"GET"}, "records.view"),
    "agreements.import_targets": ("/agreements/targets/import", {"GET", "POST"}, "agreements.manage"),
    "agreements.entries_template": ("/indicator-entries/template.xlsx", {"GET"}, "records.view"),
    "agreements.import_entries": ("/indicator-entries/import", {"GET", "POST"}, "entries.manage"),
}


def test_the_kits_pages_stand_where_the_views_stood(app):
    rules = {r.endpoint: r for r in app.url_map.iter_rules()}
    for endpoint, (rule, methods, permission) in KIT_PAGES.items():
        found = rules[endpoint]
        view = app.view_functions[endpoint]
        assert (found.rule, found.methods - {"HEAD", "OPTIONS"}, view.permission) == (rule, methods, permission)
        # The stream's module, where its declaration is (the sorts test patches its sort_clause there).
        assert view.__module__ == f"registry.{endpoint.split('.')[0]}.views", endpoint
    made_by_kit = {
        endpoint
        for endpoint, view in app.view_functions.items()
        if getattr(getattr(view, "__wrapped__", view), "__code__", None)
        and getattr(view, "__wrapped__", view).__code__.co_filename == kit.__file__
    }
    assert made_by_kit == set(KIT_PAGES)


@pytest.fixture
def gate_calls(monkeypatch):
    """The gate's scoped load and write check, recorded as the kit calls them (through the module it was given)."""
    calls = []
    load, may_write = permissions.get_visible_or_404, permissions.may_write

    def recording_load(model, ident, where=None, *, user=None):
        calls.append(("load", model, ident))
        return load(model, ident, where, user=user)

    def recording_may_write(user, record):
        calls.append(("may_write", type(record), record.id))
        return may_write(user, record)

    monkeypatch.setattr(permissions, "get_visible_or_404", recording_load)
    monkeypatch.setattr(permissions, "may_write", recording_may_write)
    return calls


def test_an_edit_loads_through_the_gate_and_asks_it_before_showing_the_form(read_world, gate_calls):
    ids, client = read_world.ids, read_world.client("county")  # 昭觉县's office
    assert client.get(f"/exchanges/{ids.exchange_a}/edit").status_code == 200
    assert gate_calls == [("load", Exchange, ids.exchange_a), ("may_write", Exchange, ids.exchange_a)]
    gate_calls.clear()
    # 苍溪县's record: out of scope reads as absent, and the write check is never reached.
    assert client.get(f"/exchanges/{ids.exchange_b}/edit").status_code == 404
    assert gate_calls == [("load", Exchange, ids.exchange_b)]


def test_a_record_the_user_sees_but_may_not_change_is_refused_before_its_form(read_world, monkeypatch):
    monkeypatch.setattr(permissions, "may_write", lambda user, record: False)
    client = read_world.client("county")
    response = client.get(f"/purchases/{read_world.ids.purchase_a}/edit")
    assert response.status_code == 403
    assert client.get(f"/purchases/{read_world.ids.purchase_a}").status_code == 200


def test_a_kit_form_posted_without_its_token_is_refused_and_writes_nothing(app, read_world):
    client = read_world.client("county")
    app.config["WTF_CSRF_ENABLED"] = True
    try:
        response = client.post("/placements/new", data={"person_name": "张三"})
    finally:
        app.config["WTF_CSRF_ENABLED"] = False
    # The app's CSRF protection refuses it before the view (read_world fails the test had anything been written).
    assert response.status_code == 400
