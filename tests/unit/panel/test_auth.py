"""Accounts: the one-time setup token, argon2 hashes, roles, lock-out, rate limiting, sessions, audit."""

from __future__ import annotations

import logging

import pytest

from edge.panel.roles import Role
from edge.panel.security import SESSION_COOKIE
from tests.helpers.panel import PASSWORD, csrf_from, panel_settings
from tests.helpers.sql import sql_one
from tests.unit.panel.conftest import Panel


async def _setup_form(panel: Panel) -> str:
    page = await panel.client.get("/setup")
    assert page.status_code == 200
    return csrf_from(page.text)


async def test_first_admin_needs_the_token_printed_to_the_log(make_panel, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="edge.panel.setup_token")
    async with make_panel() as panel:
        assert panel.ctx.setup.active
        token = next(r.getMessage().rsplit(" ", 1)[-1] for r in caplog.records if "setup token" in r.getMessage())
        # No account exists: the login page sends the installer to /setup; there is no default password.
        assert (await panel.client.get("/login")).headers["location"] == "/setup"
        form = {"username": "installer", "password": "a-long-secret-1", "password2": "a-long-secret-1"}
        wrong = await panel.client.post("/setup", data={**form, "token": "guess", "csrf_token": await _setup_form(panel)})
        assert wrong.status_code == 401
        assert await panel.ctx.users.count() == 0
        ok = await panel.client.post("/setup", data={**form, "token": token, "csrf_token": await _setup_form(panel)})
        assert ok.status_code == 303
        user = await panel.ctx.users.by_name("installer")
        assert user is not None and user.role is Role.ADMIN
        assert user.password_hash.startswith("$argon2id$") and "a-long-secret-1" not in user.password_hash
        assert not panel.ctx.setup.active
        # Logged in straight away; the token can not be used a second time.
        assert (await panel.client.get("/api/v1/me")).json()["role"] == "admin"
        again = await panel.client.post("/setup", data={**form, "token": token, "username": "x",
                                                        "csrf_token": csrf_from((await panel.client.get("/")).text)})
        assert again.status_code == 303 and again.headers["location"] == "/login"
        assert await panel.ctx.users.count() == 1
        entries = await panel.ctx.audit.search(action="setup")
        assert [e.ok for e in entries] == [True, False]


async def test_setup_refuses_a_weak_password(make_panel, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="edge.panel.setup_token")
    async with make_panel() as panel:
        token = next(r.getMessage().rsplit(" ", 1)[-1] for r in caplog.records if "setup token" in r.getMessage())
        response = await panel.client.post("/setup", data={
            "token": token, "username": "installer", "password": "short", "password2": "short",
            "csrf_token": await _setup_form(panel)})
        assert response.status_code == 422
        assert await panel.ctx.users.count() == 0 and panel.ctx.setup.active


async def test_login_logout_and_session_cookie_flags(panel: Panel) -> None:
    await panel.add_user("staff", Role.OPERATOR)
    assert (await panel.client.get("/", follow_redirects=False)).headers["location"] == "/login?next=%2F"
    page = await panel.client.get("/login")
    response = await panel.client.post("/login", data={"username": "staff", "password": PASSWORD,
                                                       "csrf_token": csrf_from(page.text), "next": "/alarms"})
    assert response.status_code == 303 and response.headers["location"] == "/alarms"
    cookie = next(h for h in response.headers.get_list("set-cookie") if h.startswith(SESSION_COOKIE + "="))
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/" in cookie
    assert (await panel.client.get("/")).status_code == 200
    home = await panel.client.get("/")
    out = await panel.client.post("/logout", data={"csrf_token": csrf_from(home.text)})
    assert out.status_code == 303
    assert (await panel.client.get("/api/v1/me")).status_code == 401
    actions = [e.action for e in await panel.ctx.audit.search(username="staff")]
    assert actions[:2] == ["logout", "login"]


async def test_wrong_password_and_unknown_user_get_the_same_answer(panel: Panel) -> None:
    await panel.add_user("staff", Role.OPERATOR)
    answers = []
    for username in ("staff", "nobody"):
        page = await panel.client.get("/login")
        response = await panel.client.post("/login", data={"username": username, "password": "wrong password",
                                                           "csrf_token": csrf_from(page.text)})
        answers.append((response.status_code, "用户名或密码错误" in response.text))
    assert answers == [(401, True), (401, True)]
    reasons = [e.detail["reason"] for e in await panel.ctx.audit.search(action="login")]
    assert reasons == ["unknown_user", "wrong_password"]


async def test_wrong_passwords_slow_down_instead_of_locking_then_admin_lifts_the_wait(panel: Panel) -> None:
    """No account lock-out (issue 10): wrong passwords make further tries from that address wait."""
    await panel.add_user("staff", Role.OPERATOR)
    for _ in range(panel.ctx.settings.login_free_failures + 1):
        page = await panel.client.get("/login")
        await panel.client.post("/login", data={"username": "staff", "password": "nope nope",
                                                "csrf_token": csrf_from(page.text)})
    user = await panel.ctx.users.by_name("staff")
    assert user is not None and not user.locked(int(panel.clock.now().timestamp() * 1e6))
    assert user.failed_logins == panel.ctx.settings.login_free_failures + 1
    # Even the right password waits while the delay runs.
    page = await panel.client.get("/login")
    waiting = await panel.client.post("/login", data={"username": "staff", "password": PASSWORD,
                                                      "csrf_token": csrf_from(page.text)})
    assert waiting.status_code == 429 and int(waiting.headers["retry-after"]) >= 1
    assert (await panel.ctx.audit.search(action="panel.login_throttled"))[0].target == "staff"
    # The users page shows it, and an admin lifts the wait.
    admin = panel.new_client()
    csrf = await panel.as_role(Role.ADMIN, client=admin)
    assert ">解锁<" in (await admin.get("/admin/users")).text  # the unlock button: only a waiting account has one
    unlocked = await admin.post("/admin/users/staff", data={"action": "unlock", "csrf_token": csrf})
    assert unlocked.status_code == 303
    await panel.login("staff")


async def test_wait_ends_by_itself(panel: Panel) -> None:
    await panel.add_user("staff", Role.OPERATOR)
    for _ in range(panel.ctx.settings.login_free_failures + 1):
        panel.ctx.throttle.failed("staff", "127.0.0.1")
    with pytest.raises(AssertionError):
        await panel.login("staff")
    wait = panel.ctx.throttle.wait("staff", "127.0.0.1")
    assert wait is not None and wait <= panel.ctx.settings.login_max_delay_s
    panel.clock.advance(wait)
    await panel.login("staff")


async def test_login_rate_limit_answers_429(make_panel) -> None:
    async with make_panel(settings=panel_settings(login_attempts_per_minute=3)) as panel:
        await panel.add_user("staff", Role.OPERATOR)
        statuses = []
        for _ in range(4):
            page = await panel.client.get("/login")
            response = await panel.client.post("/login", data={"username": "x", "password": "y",
                                                               "csrf_token": csrf_from(page.text)})
            statuses.append(response.status_code)
        assert statuses == [401, 401, 401, 429]
        assert int(response.headers["retry-after"]) > 0
        panel.clock.advance(61)
        page = await panel.client.get("/login")
        response = await panel.client.post("/login", data={"username": "x", "password": "y",
                                                           "csrf_token": csrf_from(page.text)})
        assert response.status_code == 401


async def test_roles_limit_pages_and_api(panel: Panel) -> None:
    viewer = panel.new_client()
    csrf = await panel.as_role(Role.VIEWER, client=viewer)
    assert (await viewer.get("/alarms")).status_code == 200
    for path in ("/tools", "/admin/users", "/admin/audit", "/api/docs", "/api/v1/openapi.json", "/api/v1/users"):
        assert (await viewer.get(path)).status_code == 403, path
    ack = await viewer.post("/api/v1/alarms/X/acknowledge", json={"note": ""}, headers={"x-csrf-token": csrf})
    assert ack.status_code == 403
    operator = panel.new_client()
    csrf = await panel.as_role(Role.OPERATOR, client=operator)
    assert (await operator.get("/tools")).status_code == 403
    assert (await operator.post("/api/v1/alarms/X/acknowledge", json={"note": ""},
                                headers={"x-csrf-token": csrf})).status_code == 404  # allowed, but no such alarm
    anonymous = panel.new_client()
    assert (await anonymous.get("/api/v1/alarms")).status_code == 401
    assert (await anonymous.get("/devices", follow_redirects=False)).status_code == 303


async def test_password_change_ends_other_sessions(panel: Panel) -> None:
    await panel.add_user("staff", Role.OPERATOR)
    other = panel.new_client()
    await panel.login("staff", client=other)
    csrf = await panel.login("staff")
    bad = await panel.client.post("/account/password", data={"current": "wrong", "password": "violet kettle 2048",
                                                             "password2": "violet kettle 2048", "csrf_token": csrf})
    assert bad.status_code == 422
    ok = await panel.client.post("/account/password", data={"current": PASSWORD, "password": "violet kettle 2048",
                                                            "password2": "violet kettle 2048", "csrf_token": csrf})
    assert ok.status_code == 303
    assert (await panel.client.get("/api/v1/me")).status_code == 200  # this session stays
    assert (await other.get("/api/v1/me")).status_code == 401  # the other one ended
    await panel.login("staff", "violet kettle 2048", client=panel.new_client())


async def test_admin_manages_users_but_never_removes_the_last_admin(panel: Panel) -> None:
    csrf = await panel.as_role(Role.ADMIN)
    created = await panel.client.post("/admin/users", data={"username": "guard", "role": "viewer",
                                                            "password": "teapot riverbank 8", "csrf_token": csrf})
    assert created.status_code == 303
    promote = await panel.client.post("/admin/users/guard", data={"action": "role", "role": "operator",
                                                                  "csrf_token": csrf})
    assert promote.status_code == 303
    assert (await panel.ctx.users.by_name("guard")).role is Role.OPERATOR  # type: ignore[union-attr]
    disable = await panel.client.post("/admin/users/guard", data={"action": "disable", "csrf_token": csrf})
    assert disable.status_code == 303
    self_delete = await panel.client.post("/admin/users/admin-user/delete", data={"csrf_token": csrf})
    assert self_delete.status_code == 409
    self_demote = await panel.client.post("/admin/users/admin-user", data={"action": "role", "role": "viewer",
                                                                           "csrf_token": csrf})
    assert self_demote.status_code == 409
    deleted = await panel.client.post("/admin/users/guard/delete", data={"csrf_token": csrf})
    assert deleted.status_code == 303 and await panel.ctx.users.by_name("guard") is None
    actions = [e.action for e in await panel.ctx.audit.search(username="admin-user")]
    assert {"user.create", "user.role", "user.disable", "user.delete"} <= set(actions)


async def test_disabled_user_can_not_log_in_and_loses_sessions(panel: Panel) -> None:
    await panel.add_user("guard", Role.VIEWER)
    guard = panel.new_client()
    await panel.login("guard", client=guard)
    csrf = await panel.as_role(Role.ADMIN)
    await panel.client.post("/admin/users/guard", data={"action": "disable", "csrf_token": csrf})
    assert (await guard.get("/api/v1/me")).status_code == 401
    with pytest.raises(AssertionError):
        await panel.login("guard", client=panel.new_client())


async def test_a_form_posted_after_the_session_ended_leads_back_through_login(panel: Panel) -> None:
    from tests.helpers.panel import alarm

    await panel.store.append_alarm_records([alarm("A1")])
    csrf = await panel.as_role(Role.OPERATOR)
    panel.clock.advance(panel.ctx.settings.session_idle_minutes * 60 + 1)
    response = await panel.client.post("/alarms/A1/ack", data={"note": "x", "csrf_token": csrf},
                                       headers={"referer": "http://panel.test/alarms/A1"})
    # The session is gone: nothing is written, and the browser is sent to log in, then back to the alarm.
    assert response.status_code == 303 and response.headers["location"] == "/login?next=%2Falarms%2FA1"
    assert (await sql_one(panel.store, "SELECT state FROM alarms WHERE alarm_id='A1'")) == ("raised",)
