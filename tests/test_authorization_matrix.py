"""Every endpoint × anonymous and each role × an in-scope and an out-of-scope record.

The rules below are generated from the URL map: an endpoint added without a rule here fails
``test_every_endpoint_has_a_rule``, so nobody can add a page and forget who may see it.
"""

from dataclasses import dataclass, field

import pytest

OK, FORBIDDEN, MISSING = "ok", 403, 404
ROLES = ("admin", "province", "prefecture", "county", "liaison", "reader")
SCOPED = {"prefecture", "county", "liaison", "reader"}
PUBLIC = {
    "static",
    "auth.login",
    "main.healthz",
    "closing.verify",
    "gongshi.index",
    "gongshi.notice",
    "gongshi.notice_pdf",
}


@dataclass
class Rule:
    """How an endpoint answers each role for record A (in every scope) and record B (outside scoped users')."""

    method: str = "GET"
    #: URL argument name -> world attribute for record A and for record B.
    params: dict = field(default_factory=dict)
    #: role -> (outcome for A, outcome for B)
    expect: dict = field(default_factory=dict)


def everyone():
    return {r: (OK, OK) for r in ROLES}


def scoped_records():
    """Visible to all roles, but B is missing for scoped users."""
    return {r: (OK, MISSING if r in SCOPED else OK) for r in ROLES}


def only(*roles, scoped_b=False):
    return {
        r: ((OK, MISSING if (scoped_b and r in SCOPED) else OK) if r in roles else (FORBIDDEN, FORBIDDEN))
        for r in ROLES
    }


#: Jobs of nobody in the matrix (tests/test_tasks.py checks a job is its users' alone): missing for everyone.
JOB = {"job_id": ("=999999", "=999998")}
NOBODY_ELSES = {r: (MISSING, MISSING) for r in ROLES}

RULES = {
    "main.index": Rule(expect=everyone()),
    "main.todos": Rule(expect=everyone()),
    "auth.logout": Rule("POST", expect=everyone()),
    "auth.change_password": Rule(expect=everyone()),
    "auth.users": Rule(expect=only("admin")),
    "auth.create_user": Rule(expect=only("admin")),
    "auth.user_detail": Rule(params={"user_id": ("county", "liaison")}, expect=only("admin")),
    "auth.edit_user": Rule(params={"user_id": ("county", "liaison")}, expect=only("admin")),
    "auth.reset_password": Rule("POST", {"user_id": ("county", "liaison")}, only("admin")),
    "auth.end_user_sessions": Rule("POST", {"user_id": ("county", "liaison")}, only("admin")),
    "auth.unlock_login": Rule("POST", {"user_id": ("county", "liaison")}, only("admin")),
    "counties.index": Rule(expect=everyone()),
    "counties.detail": Rule(params={"unit_id": ("zhaojue", "cangxi")}, expect=scoped_records()),
    "counties.set_category": Rule("POST", {"unit_id": ("zhaojue", "cangxi")}, only("admin")),
    "counties.create": Rule(expect=only("admin", "province", "prefecture", "county", "liaison")),
    "counties.edit": Rule(
        params={"unit_id": ("zhaojue_school", "cangxi_school")},
        expect={
            "admin": (OK, OK),
            "province": (OK, OK),
            "prefecture": (OK, MISSING),
            "county": (OK, MISSING),
            # A Zhaojue school is no partner of a Zhejiang unit: invisible to the liaison.
            "liaison": (MISSING, MISSING),
            "reader": (FORBIDDEN, FORBIDDEN),
        },
    ),
    "pairings.index": Rule(expect=everyone()),
    "pairings.detail": Rule(params={"pairing_id": ("a", "b")}, expect=scoped_records()),
    "pairings.create": Rule(expect=only("admin", "province", "prefecture", "county")),
    "pairings.edit": Rule(
        params={"pairing_id": ("a", "b")},
        expect={
            "admin": (OK, OK),
            "province": (OK, OK),
            "prefecture": (OK, MISSING),
            # County offices manage pairings below county level only.
            "county": (FORBIDDEN, MISSING),
            "liaison": (FORBIDDEN, FORBIDDEN),
            "reader": (FORBIDDEN, FORBIDDEN),
        },
    ),
    "pairings.programmes": Rule(expect=everyone()),
    "pairings.create_programme": Rule(expect=only("admin")),
    "pairings.edit_programme": Rule(params={"programme_id": ("zc", "yc")}, expect=only("admin")),
    "audit.index": Rule(expect=only("admin")),
}
RULES["pairings.end"] = Rule("POST", RULES["pairings.edit"].params, RULES["pairings.edit"].expect)

#: Project writes: staff and liaisons within scope; readers never.
PROJECT_WRITE = {
    "admin": (OK, OK),
    "province": (OK, OK),
    "prefecture": (OK, MISSING),
    "county": (OK, MISSING),
    "liaison": (OK, MISSING),
    "reader": (FORBIDDEN, FORBIDDEN),
}
PROJECT = {"project_id": ("project_a", "project_b")}
TRANSACTION = {**PROJECT, "transaction_id": ("txn_a", "txn_b")}
ASSET = {"asset_id": ("asset_a", "asset_b")}
#: Sichuan office staff within scope only: not administrators, liaisons or readers.
SICHUAN_STAFF = {
    "admin": (FORBIDDEN, FORBIDDEN),
    "province": (OK, OK),
    "prefecture": (OK, MISSING),
    "county": (OK, MISSING),
    "liaison": (FORBIDDEN, FORBIDDEN),
    "reader": (FORBIDDEN, FORBIDDEN),
}
REPORT = {"unit_id": ("zhaojue", "cangxi"), "quarter_text": ("=2024Q2", "=2019Q2")}
#: Evidence files of a fund transaction (its project's scope); the matrix's world has no file: tests/test_evidence.py
#: checks every record type with files, in and out of scope.
EVIDENCE = {"record_type": ("=fund_transactions", "=fund_transactions"), "record_id": ("txn_a", "txn_b")}
EVIDENCE_FILE = {**EVIDENCE, "attachment_id": ("=999999", "=999998")}
RULES.update(
    {
        "evidence.index": Rule(params=EVIDENCE, expect=scoped_records()),
        "evidence.upload": Rule("POST", EVIDENCE, PROJECT_WRITE),
        "evidence.download": Rule(params=EVIDENCE_FILE, expect=NOBODY_ELSES),
        # The role is asked first (readers: 403), then the record and its file (none here: 404).
        "evidence.delete": Rule(
            "POST", EVIDENCE_FILE, {r: (FORBIDDEN, FORBIDDEN) if r == "reader" else (MISSING, MISSING) for r in ROLES}
        ),
    }
)
RULES.update(
    {
        "projects.index": Rule(expect=everyone()),
        "projects.export": Rule(params={"kind": ("=xlsx", "=csv")}, expect=everyone()),
        "projects.detail": Rule(params=PROJECT, expect=scoped_records()),
        "projects.create": Rule(expect=only("admin", "province", "prefecture", "county", "liaison")),
        "projects.edit": Rule(params=PROJECT, expect=PROJECT_WRITE),
        "projects.change_status": Rule("POST", PROJECT, PROJECT_WRITE),
        "projects.add_transaction": Rule("POST", PROJECT, PROJECT_WRITE),
        "projects.edit_transaction": Rule(params=TRANSACTION, expect=PROJECT_WRITE),
        "projects.delete_transaction": Rule("POST", TRANSACTION, PROJECT_WRITE),
        "projects.export_funds": Rule(params={"kind": ("=xlsx", "=csv")}, expect=everyone()),
        "projects.template": Rule(expect=everyone()),
        "projects.funds_template": Rule(expect=everyone()),
        "projects.import_": Rule(expect=only("admin", "province", "prefecture", "county", "liaison")),
        "projects.import_funds": Rule(expect=only("admin", "province", "prefecture", "county", "liaison")),
        "agreements.export_targets": Rule(params={"kind": ("=xlsx", "=csv")}, expect=everyone()),
        "agreements.targets_template": Rule(expect=everyone()),
        "agreements.import_targets": Rule(expect=only("admin", "province")),
        "agreements.export_entries": Rule(params={"kind": ("=xlsx", "=csv")}, expect=everyone()),
        "agreements.entries_template": Rule(expect=everyone()),
        "agreements.import_entries": Rule(expect=only("admin", "province", "prefecture", "county", "liaison")),
        "agreements.index": Rule(expect=everyone()),
        # Agreements are programme-wide: a Zhejiang liaison does not see Guangdong's.
        "agreements.detail": Rule(
            params={"agreement_id": ("agreement_zc", "agreement_yc")},
            expect={r: (OK, MISSING if r == "liaison" else OK) for r in ROLES},
        ),
        # The ranking is the agreement's: same visibility; its rows are limited to the user's scope (test_ranking).
        "agreements.ranking_page": Rule(
            params={"agreement_id": ("agreement_zc", "agreement_yc")},
            expect={r: (OK, MISSING if r == "liaison" else OK) for r in ROLES},
        ),
        "agreements.ranking_export": Rule(
            params={"agreement_id": ("agreement_zc", "agreement_yc")},
            expect={r: (OK, MISSING if r == "liaison" else OK) for r in ROLES},
        ),
        "agreements.create": Rule(expect=only("admin", "province")),
        "agreements.edit": Rule(
            params={"agreement_id": ("agreement_zc", "agreement_yc")}, expect=only("admin", "province")
        ),
        "agreements.targets": Rule(
            params={"agreement_id": ("agreement_zc", "agreement_yc"), "unit_id": ("zhaojue", "cangxi")},
            expect=only("admin", "province"),
        ),
        "agreements.indicators": Rule(expect=everyone()),
        "agreements.create_indicator": Rule(expect=only("admin")),
        "agreements.edit_indicator": Rule(
            params={"indicator_id": ("indicator_builtin", "indicator_builtin")}, expect=only("admin")
        ),
        "agreements.entries": Rule(expect=everyone()),
        "agreements.create_entry": Rule(expect=only("admin", "province", "prefecture", "county", "liaison")),
        "agreements.delete_entry": Rule("POST", {"entry_id": ("entry_a", "entry_b")}, PROJECT_WRITE),
        "placements.index": Rule(expect=everyone()),
        "placements.duplicates": Rule(expect=everyone()),
        "placements.detail": Rule(params={"placement_id": ("placement_a", "placement_b")}, expect=scoped_records()),
        "placements.create": Rule(expect=only("admin", "province", "prefecture", "county", "liaison")),
        "placements.edit": Rule(params={"placement_id": ("placement_a", "placement_b")}, expect=PROJECT_WRITE),
        "placements.template": Rule(expect=everyone()),
        "placements.export": Rule(params={"kind": ("=xlsx", "=csv")}, expect=everyone()),
        "placements.import_": Rule(expect=only("admin", "province", "prefecture", "county", "liaison")),
        "purchases.index": Rule(expect=everyone()),
        "purchases.export": Rule(params={"kind": ("=xlsx", "=csv")}, expect=everyone()),
        "purchases.template": Rule(expect=everyone()),
        "purchases.import_": Rule(expect=only("admin", "province", "prefecture", "county", "liaison")),
        "exchanges.export": Rule(params={"kind": ("=xlsx", "=csv")}, expect=everyone()),
        "exchanges.template": Rule(expect=everyone()),
        "exchanges.import_": Rule(expect=only("admin", "province", "prefecture", "county", "liaison")),
        "purchases.channels": Rule(expect=everyone()),
        "purchases.detail": Rule(params={"purchase_id": ("purchase_a", "purchase_b")}, expect=scoped_records()),
        "purchases.create": Rule(expect=only("admin", "province", "prefecture", "county", "liaison")),
        "purchases.edit": Rule(params={"purchase_id": ("purchase_a", "purchase_b")}, expect=PROJECT_WRITE),
        "exchanges.index": Rule(expect=everyone()),
        "exchanges.detail": Rule(params={"exchange_id": ("exchange_a", "exchange_b")}, expect=scoped_records()),
        "exchanges.create": Rule(expect=only("admin", "province", "prefecture", "county", "liaison")),
        "exchanges.edit": Rule(params={"exchange_id": ("exchange_a", "exchange_b")}, expect=PROJECT_WRITE),
        "reports.index": Rule(expect=everyone()),
        "reports.go": Rule(expect=everyone()),
        # Zhaojue in 2024 (pairing a) is everyone's; Cangxi in 2019 (pairing b) is outside every scoped user's.
        "reports.dashboard": Rule(params=REPORT, expect=scoped_records()),
        "reports.pdf": Rule(params=REPORT, expect=scoped_records()),
        # The narrative: Sichuan office staff within scope, not administrators, liaisons or readers.
        "reports.narrative": Rule(
            "POST",
            REPORT,
            SICHUAN_STAFF,
        ),
        # Closing a quarter. Record A is Zhaojue's 2024Q2 report (everyone's), B Cangxi's 2019Q2 (outside every
        # scoped user's). A step allowed to the role answers with a redirect (taken, or refused by its state).
        "closing.submit": Rule(
            "POST",
            REPORT,
            {
                "admin": (FORBIDDEN, FORBIDDEN),
                "province": (FORBIDDEN, FORBIDDEN),  # a county submits its own
                "prefecture": (FORBIDDEN, MISSING),
                "county": (OK, MISSING),
                "liaison": (FORBIDDEN, FORBIDDEN),
                "reader": (FORBIDDEN, FORBIDDEN),
            },
        ),
        "closing.review": Rule(
            "POST",
            REPORT,
            {
                "admin": (FORBIDDEN, FORBIDDEN),
                "province": (FORBIDDEN, FORBIDDEN),
                "prefecture": (OK, MISSING),
                "county": (FORBIDDEN, FORBIDDEN),
                "liaison": (FORBIDDEN, FORBIDDEN),
                "reader": (FORBIDDEN, FORBIDDEN),
            },
        ),
        "closing.approve": Rule("POST", REPORT, only("province")),
        "closing.decide_unlock": Rule("POST", REPORT, only("province")),
        # The liaison of a partner valid in the quarter: Yuyao (Zhejiang) in 2024; Cangxi 2019 is not theirs.
        "closing.confirm": Rule(
            "POST", REPORT, {r: (OK, MISSING) if r == "liaison" else (FORBIDDEN, FORBIDDEN) for r in ROLES}
        ),
        "closing.answer": Rule(
            "POST",
            REPORT,
            {
                "admin": (FORBIDDEN, FORBIDDEN),
                "province": (FORBIDDEN, FORBIDDEN),
                "prefecture": (OK, MISSING),
                "county": (OK, MISSING),
                "liaison": (FORBIDDEN, FORBIDDEN),
                "reader": (FORBIDDEN, FORBIDDEN),
            },
        ),
        "closing.request_unlock": Rule(
            "POST",
            REPORT,
            {
                "admin": (FORBIDDEN, FORBIDDEN),
                "province": (FORBIDDEN, FORBIDDEN),  # the province decides instead
                "prefecture": (OK, MISSING),
                "county": (OK, MISSING),
                "liaison": (FORBIDDEN, FORBIDDEN),
                "reader": (FORBIDDEN, FORBIDDEN),
            },
        ),
        # No version is stored in the matrix's world: missing for everyone who may see the report at all
        # (tests/test_closing.py downloads real ones).
        "closing.version_pdf": Rule(
            params=REPORT | {"number": ("=1", "=1")}, expect={r: (MISSING, MISSING) for r in ROLES}
        ),
        "closing.changes": Rule(
            params=REPORT | {"number": ("=2", "=2")}, expect={r: (MISSING, MISSING) for r in ROLES}
        ),
        # Report batches: the province, prefectures and liaisons (their scope); a job is only its users'.
        "tasks.report_batch": Rule("POST", expect=only("province", "prefecture", "liaison")),
        "tasks.index": Rule(expect=everyone()),
        "tasks.job": Rule(params=JOB, expect=NOBODY_ELSES),
        "tasks.status": Rule(params=JOB, expect=NOBODY_ELSES),
        "tasks.download": Rule(params=JOB, expect=NOBODY_ELSES),
        "tasks.notifications": Rule(expect=everyone()),
        "tasks.mark_read": Rule("POST", expect=everyone()),
        "tasks.set_email": Rule("POST", expect=everyone()),
        # Project assets: read like records, written like projects (projects.edit, within scope).
        "assets.index": Rule(expect=everyone()),
        "assets.ledger": Rule(expect=everyone()),
        "assets.repaired": Rule(expect=everyone()),
        "assets.export": Rule(params={"kind": ("=xlsx", "=csv")}, expect=everyone()),
        "assets.template": Rule(expect=everyone()),
        "assets.import_": Rule(expect=only("admin", "province", "prefecture", "county", "liaison")),
        "assets.create": Rule(expect=only("admin", "province", "prefecture", "county", "liaison")),
        "assets.detail": Rule(params=ASSET, expect=scoped_records()),
        "assets.edit": Rule(params=ASSET, expect=PROJECT_WRITE),
        "assets.change_state": Rule("POST", ASSET, PROJECT_WRITE),
        "assets.add_check": Rule("POST", ASSET, PROJECT_WRITE),
        "assets.confirm": Rule("POST", ASSET, PROJECT_WRITE),
        # Full identity numbers: Sichuan office staff only, never administrators, liaisons or readers.
        "placements.reveal": Rule(
            "POST",
            {"placement_id": ("placement_a", "placement_b")},
            SICHUAN_STAFF,
        ),
    }
)

#: Disclosure notices: Zhaojue's (A) and Cangxi's (B). A notice has no pairing, so East liaisons see none; managing
#: them is Sichuan office staff's (and administrators'), within scope.
NOTICE = {"notice_id": ("notice_a", "notice_b")}
NOTICE_VIEW = scoped_records() | {"liaison": (MISSING, MISSING)}
NOTICE_MANAGE = {
    "admin": (OK, OK),
    "province": (OK, OK),
    "prefecture": (OK, MISSING),
    "county": (OK, MISSING),
    "liaison": (FORBIDDEN, FORBIDDEN),
    "reader": (FORBIDDEN, FORBIDDEN),
}
RULES.update(
    {
        "disclosure.index": Rule(expect=everyone()),
        "disclosure.compliance": Rule(expect=everyone()),
        "disclosure.create": Rule(expect=only("admin", "province", "prefecture", "county")),
        "disclosure.detail": Rule(params=NOTICE, expect=NOTICE_VIEW),
        "disclosure.publish": Rule("POST", NOTICE, NOTICE_MANAGE),
        "disclosure.withdraw": Rule("POST", NOTICE, NOTICE_MANAGE),
        "disclosure.add_posting": Rule("POST", NOTICE, NOTICE_MANAGE),
        "disclosure.add_complaint": Rule("POST", NOTICE, NOTICE_MANAGE),
        # Which complaint is a posted field: without one the page says so (tests/test_disclosure.py answers real ones).
        "disclosure.answer_complaint": Rule("POST", NOTICE, NOTICE_MANAGE),
    }
)


# 整改台账. Problem A is Zhaojue's (pairing a: the Zhejiang liaison sees it), B Cangxi's 2019 one (Guangdong's).
PROBLEM = {"problem_id": ("problem_a", "problem_b")}
PROPOSAL = {"proposal_id": ("proposal_a", "proposal_b")}
#: Problem writes: Sichuan office staff and administrators within scope; liaisons and readers never.
PROBLEM_WRITE = PROJECT_WRITE | {"liaison": (FORBIDDEN, FORBIDDEN)}
#: 销号 and 退回: the Sichuan offices (each step's own rule then decides: refusals are redirects with a message).
PROBLEM_REVIEW = SICHUAN_STAFF
STAFF_ONLY = only("admin", "province", "prefecture", "county")
RULES.update(
    {
        "problems.index": Rule(expect=everyone()),
        "problems.export": Rule(params={"kind": ("=xlsx", "=csv")}, expect=everyone()),
        "problems.template": Rule(expect=everyone()),
        "problems.import_": Rule(expect=STAFF_ONLY),
        "problems.detail": Rule(params=PROBLEM, expect=scoped_records()),
        "problems.create": Rule(expect=STAFF_ONLY),
        "problems.edit": Rule(params=PROBLEM, expect=PROBLEM_WRITE),
        "problems.progress": Rule("POST", PROBLEM, PROBLEM_WRITE),
        "problems.request_close": Rule("POST", PROBLEM, PROBLEM_WRITE),
        "problems.sign": Rule("POST", PROBLEM, PROBLEM_REVIEW),
        "problems.return_": Rule("POST", PROBLEM, PROBLEM_REVIEW),
        "problems.add_link": Rule("POST", PROBLEM, PROBLEM_WRITE),
        "problems.remove_link": Rule("POST", PROBLEM | {"link_id": ("link_a", "link_a")}, PROBLEM_WRITE),
        # Proposals lie in a county and belong to no pairing: liaisons see none.
        "findings.index": Rule(expect=everyone()),
        "findings.detail": Rule(params=PROPOSAL, expect=scoped_records() | {"liaison": (MISSING, MISSING)}),
        "findings.run": Rule("POST", expect=STAFF_ONLY),
        "findings.accept": Rule("POST", PROPOSAL, PROBLEM_WRITE),
        "findings.dismiss": Rule("POST", PROPOSAL, PROBLEM_WRITE),
    }
)


def test_every_endpoint_has_a_rule(app):
    endpoints = {rule.endpoint for rule in app.url_map.iter_rules()}
    missing = endpoints - PUBLIC - RULES.keys()
    assert not missing, f"endpoints without an authorization rule: {sorted(missing)}"
    assert not (RULES.keys() - endpoints), "rules for endpoints that no longer exist"


def test_public_endpoints_are_marked_public(app):
    for endpoint in PUBLIC - {"static"}:
        assert getattr(app.view_functions[endpoint], "is_public", False), endpoint
    for endpoint, view in app.view_functions.items():
        if endpoint not in PUBLIC:
            assert not getattr(view, "is_public", False), f"{endpoint} is public but has no PUBLIC entry"


def rule_url(app, endpoint, rule, world, which):
    from flask import url_for

    args = {
        name: pair[which][1:] if pair[which].startswith("=") else getattr(world, pair[which])
        for name, pair in rule.params.items()
    }
    with app.test_request_context():
        return url_for(endpoint, **args)


def _check(response, expected, what):
    if expected == OK:
        # 409: let through, then refused as stale, since the matrix posts no version (test_form_fuzz posts forms).
        assert response.status_code in (200, 302, 303, 409, 422), f"{what}: {response.status_code}"
        if response.status_code in (302, 303):
            assert "/login" not in response.headers["Location"] or "logout" in what, what
    else:
        assert response.status_code == expected, f"{what}: {response.status_code} != {expected}"


@pytest.mark.parametrize("endpoint", sorted(RULES))
def test_anonymous_is_sent_to_login(app, read_world, endpoint):
    rule = RULES[endpoint]
    url = rule_url(app, endpoint, rule, read_world.ids, 0)
    response = app.test_client().open(url, method=rule.method)
    assert response.status_code in (302, 303)
    assert response.headers["Location"].startswith("/login")


#: The endpoints read with GET (checked on one world shared by the reads: a read that writes fails) and the rest.
READS = sorted(endpoint for endpoint, rule in RULES.items() if rule.method == "GET")
WRITES = sorted(endpoint for endpoint, rule in RULES.items() if rule.method != "GET")


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("endpoint", READS)
def test_role_matrix_reads(app, read_world, endpoint, role):
    _role_case(app, read_world.ids, lambda: read_world.client(role), endpoint, role)


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("endpoint", WRITES)
def test_role_matrix_writes(app, world, as_user, endpoint, role):
    _role_case(app, world, lambda: as_user(role), endpoint, role)


def _role_case(app, world, client_of, endpoint, role):
    rule = RULES[endpoint]
    for which in (0, 1) if rule.params else (0,):
        url = rule_url(app, endpoint, rule, world, which)
        response = client_of().open(url, method=rule.method)
        _check(response, rule.expect[role][which], f"{role} {rule.method} {url}")
