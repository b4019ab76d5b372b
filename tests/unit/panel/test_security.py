"""Security: CSRF refused, session fixation prevented, XSS inert, evidence path traversal refused."""

from __future__ import annotations

import os
from pathlib import Path

from fastapi.routing import APIRoute

from edge.panel.roles import Role
from edge.panel.security import SESSION_COOKIE, UNSAFE_METHODS, csrf_protect
from tests.helpers.panel import PASSWORD, XSS_NAME, alarm, csrf_from
from tests.helpers.sql import sql_one
from tests.unit.panel.conftest import Panel

# --------------------------------------------------------------------------------------------- CSRF


def _depends_on(route: APIRoute, fn: object) -> bool:
    stack = list(route.dependant.dependencies)
    while stack:
        dep = stack.pop()
        if dep.call is fn:
            return True
        stack.extend(dep.dependencies)
    return False


def _all_routes() -> list[APIRoute]:
    from edge.panel import routes

    modules = [getattr(routes, name) for name in routes.__all__]
    found = [r for m in modules for r in m.router.routes if isinstance(r, APIRoute)]
    found += [r for r in routes.system.open_router.routes if isinstance(r, APIRoute)]
    return found


def test_every_state_changing_route_checks_csrf(panel: Panel) -> None:
    unsafe = [r for r in _all_routes() if r.methods & UNSAFE_METHODS]
    assert len(unsafe) >= 20
    missing = [f"{sorted(r.methods)} {r.path}" for r in unsafe if not _depends_on(r, csrf_protect)]
    assert missing == []


async def test_every_state_changing_route_refuses_a_request_without_token(panel: Panel) -> None:
    """Behaviourally too: as an admin, every POST/PUT/PATCH/DELETE without the token gets 403."""
    await panel.as_role(Role.ADMIN)
    for route in _all_routes():
        for method in sorted(route.methods & UNSAFE_METHODS):
            path = route.path.replace("{", "").replace("}", "")
            response = await panel.client.request(method, path, json={}, headers={"origin": "http://panel.test"})
            assert response.status_code == 403, (method, route.path, response.status_code)


async def test_form_post_without_or_with_a_wrong_token_is_refused(panel: Panel) -> None:
    await panel.store.append_alarm_records([alarm("A1")])
    csrf = await panel.as_role(Role.OPERATOR)
    no_token = await panel.client.post("/alarms/A1/ack", data={"note": "x"})
    wrong = await panel.client.post("/alarms/A1/ack", data={"note": "x", "csrf_token": "0" * 43})
    other_session = panel.new_client()
    other_csrf = await panel.as_role(Role.ADMIN, client=other_session)
    stolen_from_other_session = await panel.client.post("/alarms/A1/ack", data={"note": "x", "csrf_token": other_csrf})
    assert [r.status_code for r in (no_token, wrong, stolen_from_other_session)] == [403, 403, 403]
    assert "CSRF" in no_token.text
    row = await sql_one(panel.store, "SELECT state FROM alarms WHERE alarm_id='A1'")
    assert row == ("raised",)
    ok = await panel.client.post("/alarms/A1/ack", data={"note": "x", "csrf_token": csrf})
    assert ok.status_code == 303


async def test_api_write_needs_the_header_and_same_origin(panel: Panel) -> None:
    await panel.store.append_alarm_records([alarm("A1")])
    csrf = await panel.as_role(Role.OPERATOR)
    missing = await panel.client.post("/api/v1/alarms/A1/acknowledge", json={"note": ""})
    foreign = await panel.client.post("/api/v1/alarms/A1/acknowledge", json={"note": ""},
                                      headers={"x-csrf-token": csrf, "origin": "http://evil.example"})
    opaque = await panel.client.post("/api/v1/alarms/A1/acknowledge", json={"note": ""},
                                     headers={"x-csrf-token": csrf, "origin": "null"})
    assert [r.status_code for r in (missing, foreign, opaque)] == [403, 403, 403]
    same = await panel.client.post("/api/v1/alarms/A1/acknowledge", json={"note": ""},
                                   headers={"x-csrf-token": csrf, "origin": "http://panel.test"})
    assert same.status_code == 200 and same.json()["state"] == "acknowledged"


async def test_login_form_itself_is_csrf_protected(panel: Panel) -> None:
    """Login CSRF: a foreign site must not log the victim into the attacker's account."""
    await panel.add_user("staff", Role.OPERATOR)
    forged = await panel.client.post("/login", data={"username": "staff", "password": PASSWORD})
    assert forged.status_code == 403
    attacker = panel.new_client()
    attacker_token = csrf_from((await attacker.get("/login")).text)  # valid only with the attacker's pre-cookie
    replayed = await panel.client.post("/login", data={"username": "staff", "password": PASSWORD,
                                                       "csrf_token": attacker_token})
    assert replayed.status_code == 403
    assert SESSION_COOKIE not in panel.client.cookies


async def test_language_and_logout_are_csrf_protected(panel: Panel) -> None:
    await panel.as_role(Role.VIEWER)
    assert (await panel.client.post("/lang", data={"lang": "en"})).status_code == 403
    assert (await panel.client.post("/logout")).status_code == 403
    assert (await panel.client.get("/api/v1/me")).status_code == 200


# --------------------------------------------------------------------------------------------- session fixation


async def test_planted_session_id_is_never_adopted(panel: Panel) -> None:
    await panel.add_user("staff", Role.OPERATOR)
    panel.client.cookies.set(SESSION_COOKIE, "attacker-chosen-value", domain="panel.test")
    assert (await panel.client.get("/api/v1/me")).status_code == 401  # an unknown id is no session
    page = await panel.client.get("/login")
    response = await panel.client.post("/login", data={"username": "staff", "password": PASSWORD,
                                                       "csrf_token": csrf_from(page.text)})
    issued = response.cookies.get(SESSION_COOKIE)
    assert issued and issued != "attacker-chosen-value"
    attacker = panel.new_client()
    attacker.cookies.set(SESSION_COOKIE, "attacker-chosen-value", domain="panel.test")
    assert (await attacker.get("/api/v1/me")).status_code == 401


async def test_login_replaces_an_existing_valid_session(panel: Panel) -> None:
    """An attacker plants *their own valid* session in the victim's browser; the victim's login must not keep it."""
    await panel.add_user("mallory", Role.VIEWER)
    await panel.add_user("victim", Role.ADMIN)
    attacker = panel.new_client()
    await panel.login("mallory", client=attacker)
    planted = attacker.cookies[SESSION_COOKIE]
    panel.client.cookies.set(SESSION_COOKIE, planted, domain="panel.test")
    page = await panel.client.get("/login")  # already "logged in" as mallory: /login redirects
    assert page.status_code == 303
    page = await panel.new_client().get("/login")
    panel.client.cookies.set("edge_pre", page.cookies["edge_pre"], domain="panel.test")
    response = await panel.client.post("/login", data={"username": "victim", "password": PASSWORD,
                                                       "csrf_token": csrf_from(page.text)})
    assert response.status_code == 403  # the form token belongs to mallory's session now: refused
    panel.client.cookies.clear()
    await panel.login("victim")
    assert panel.client.cookies[SESSION_COOKIE] != planted
    # Logging in with a planted valid cookie present deletes that session server-side.
    victim2 = panel.new_client()
    victim2.cookies.set(SESSION_COOKIE, planted, domain="panel.test")
    me = await victim2.get("/api/v1/me")
    assert me.json()["username"] == "mallory"
    await victim2.post("/logout", data={"csrf_token": me.json()["csrf_token"]})
    assert (await attacker.get("/api/v1/me")).status_code == 401


async def test_session_expires_when_idle(panel: Panel) -> None:
    await panel.as_role(Role.VIEWER)
    assert (await panel.client.get("/api/v1/me")).status_code == 200
    panel.clock.advance(panel.ctx.settings.session_idle_minutes * 60 + 1)
    assert (await panel.client.get("/api/v1/me")).status_code == 401


# --------------------------------------------------------------------------------------------- XSS


async def test_xss_in_device_names_and_alarm_notes_is_inert(panel: Panel) -> None:
    note = '<img src=x onerror="alert(\'note\')"><script>alert(2)</script>'
    await panel.store.append_alarm_records([alarm("AX", device_id="xss-1", message="<svg onload=alert(3)>")])
    csrf = await panel.as_role(Role.OPERATOR)
    assert (await panel.client.post("/alarms/AX/resolve", data={"note": note, "csrf_token": csrf})).status_code == 303
    pages = {path: (await panel.client.get(path)).text for path in (
        "/devices", "/devices/xss-1", "/alarms/AX", "/alarms/history", "/alarms/rows?state=", "/")}
    pages["/alarms (open)"] = (await panel.client.get("/alarms")).text
    for path, html in pages.items():
        assert "<script>alert" not in html, path
        assert "<img src=x" not in html, path
        assert "<svg onload" not in html, path
    assert "&lt;script&gt;alert(&#34;xss-device&#34;)&lt;/script&gt;" in pages["/devices"]
    assert "&lt;img src=x onerror=&#34;alert(&#39;note&#39;)&#34;&gt;" in pages["/alarms/AX"]
    api = (await panel.client.get("/api/v1/alarms/AX")).json()
    assert api["note"] == note and api["device_name"] == XSS_NAME  # the API returns data as data (JSON)
    csp = (await panel.client.get("/devices")).headers["content-security-policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp


async def test_csv_export_neutralises_formulas(panel: Panel) -> None:
    await panel.store.append_alarm_records([alarm("AF", message="=HYPERLINK(\"http://evil\",\"x\")")])
    await panel.as_role(Role.VIEWER)
    text = (await panel.client.get("/alarms/export.csv")).text
    assert "'=HYPERLINK" in text and ",=HYPERLINK" not in text


# --------------------------------------------------------------------------------------------- path traversal


async def test_evidence_download_refuses_path_traversal(panel: Panel, tmp_path: Path) -> None:
    evidence = panel.store.evidence_dir
    (evidence / "good.jpg").write_bytes(b"\xff\xd8\xff\xd9")
    secret = tmp_path / "secret.jpg"
    secret.write_bytes(b"not for you")
    os.symlink(secret, evidence / "link.jpg")
    (evidence / "sub").mkdir()
    (evidence / "sub" / "inner.jpg").write_bytes(b"\xff\xd8\xff\xd9")
    await panel.as_role(Role.VIEWER)
    assert (await panel.client.get("/evidence/good.jpg")).content == b"\xff\xd8\xff\xd9"
    attempts = [
        "/evidence/..%2Fsecret.jpg", "/evidence/..%2F..%2Fetc%2Fpasswd", "/evidence/%2E%2E%2Fsecret.jpg",
        "/evidence/..%5Csecret.jpg", "/evidence/link.jpg", "/evidence/sub%2Finner.jpg", "/evidence/.hidden.jpg",
        "/evidence/%2E%2E", "/evidence/%2Fetc%2Fpasswd", "/evidence/good.jpg%00.png", "/evidence/../estate.yaml",
        "/evidence/..%252Fsecret.jpg",
    ]
    for path in attempts:
        response = await panel.client.get(path)
        assert response.status_code == 404, (path, response.status_code)
        assert b"not for you" not in response.content
    assert (await panel.new_client().get("/evidence/good.jpg")).status_code == 401  # login first


async def test_open_redirect_after_login_is_refused(panel: Panel) -> None:
    await panel.add_user("staff", Role.OPERATOR)
    for target in ("https://evil.example/", "//evil.example/", "/\\evil.example", "javascript:alert(1)"):
        client = panel.new_client()
        page = await client.get("/login")
        response = await client.post("/login", data={"username": "staff", "password": PASSWORD, "next": target,
                                                     "csrf_token": csrf_from(page.text)})
        assert response.headers["location"] == "/", target


async def test_security_headers_on_pages(panel: Panel) -> None:
    response = await panel.client.get("/login")
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["cache-control"] == "no-store"
    assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
    static = await panel.client.get("/static/panel.css")
    assert static.status_code == 200 and "max-age" in static.headers["cache-control"]
