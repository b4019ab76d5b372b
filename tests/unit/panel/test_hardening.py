"""Issue 10, defect 10: what independent testing found in the panel, and the class each finding belongs to.

- odd path parameters (NUL, ``..``, encoded slashes, control characters, overlong names) on every
  path-taking route answer 404, never 500;
- ``/metrics`` needs a bearer token or a logged-in session unless the config opens it;
- wrong passwords slow down one account from one address with growing delays instead of locking the
  account for everybody, and staff see a ``panel.login_throttled`` security event;
- HSTS whenever the panel is reached over TLS;
- a real password strength estimate, explained in the user's language.
"""

from __future__ import annotations

import re

import httpx
import pytest
from fastapi.routing import APIRoute

from edge.panel.passwords import PasswordPolicyError, Passwords
from edge.panel.roles import Role
from tests.helpers.panel import PASSWORD, alarm, csrf_from, panel_settings
from tests.helpers.sql import sql_rows
from tests.unit.panel.conftest import Panel

# ------------------------------------------------------------------------------------ odd path parameters

# A literal ".." segment is removed by the client (RFC 3986 dot-segment removal) before it is sent;
# its encoded form reaches the server as "..".
ODD_SEGMENTS = [
    "%00x.jpg", "x%00.jpg", "good.jpg%00", "%00", "%2E%2E", ".%2E", "%2E", "..%2Fx", "%2F", "a%2Fb", "a%5Cb", "%5C",
    "%01x", "x%0Ay", "%7F", "." * 300, "a" * 300 + ".jpg", "%C0%AE%C0%AE", "%FF%FE",
]


def _path_routes() -> list[tuple[str, str]]:
    """Every (method, path template) of the panel that takes a path parameter."""
    from edge.panel import routes

    modules = [getattr(routes, name) for name in routes.__all__]
    found = []
    for route in [r for m in modules for r in m.router.routes] + list(routes.system.open_router.routes):
        if isinstance(route, APIRoute) and "{" in route.path:
            for method in sorted(route.methods - {"HEAD"}):
                found.append((method, route.path))
    return found


def _fill(template: str, segment: str) -> str:
    return re.sub(r"\{[^}]+\}", segment, template)


async def test_nul_in_an_evidence_name_is_404_not_500(panel: Panel) -> None:
    """The reported case: ``GET /evidence/%00x.jpg`` answered 500 with a traceback."""
    await panel.as_role(Role.VIEWER)
    response = await panel.client.get("/evidence/%00x.jpg")
    assert response.status_code == 404
    assert "Traceback" not in response.text


async def test_every_path_taking_route_refuses_odd_segments_without_a_server_error(panel: Panel) -> None:
    await panel.store.append_alarm_records([alarm("A1")])
    csrf = await panel.as_role(Role.ADMIN)
    routes = _path_routes()
    assert len(routes) >= 15
    headers = {"x-csrf-token": csrf, "origin": "http://panel.test"}
    failures = []
    for method, template in routes:
        for segment in ODD_SEGMENTS:
            path = _fill(template, segment)
            kwargs = {"json": {}} if method in ("POST", "PUT", "PATCH") else {}
            if template.startswith("/api/") or method != "GET":
                kwargs["headers"] = headers
            if method == "POST" and not template.startswith("/api/"):
                kwargs = {"data": {"csrf_token": csrf}}
            response = await panel.client.request(method, path, **kwargs)
            if response.status_code not in (307, 400, 404, 405, 422):  # 307: Starlette drops a trailing slash
                failures.append((method, path[:60], response.status_code))
            assert "Traceback" not in response.text
    assert failures == [], failures[:20]


async def test_static_files_refuse_odd_names(panel: Panel) -> None:
    for segment in ("%00x.css", "..%2F..%2Fetc%2Fpasswd", "a" * 300):
        assert (await panel.client.get(f"/static/{segment}")).status_code in (400, 404)


async def test_ordinary_names_still_work(panel: Panel) -> None:
    (panel.store.evidence_dir / "ok-1.jpg").write_bytes(b"\xff\xd8\xff\xd9")
    await panel.store.append_alarm_records([alarm("A-ordinary")])
    await panel.as_role(Role.VIEWER)
    assert (await panel.client.get("/evidence/ok-1.jpg")).status_code == 200
    assert (await panel.client.get("/alarms/A-ordinary")).status_code == 200
    assert (await panel.client.get("/devices/hyd-1")).status_code == 200
    assert (await panel.client.get("/api/v1/devices/hyd-1")).status_code == 200


# ------------------------------------------------------------------------------------ /metrics


async def test_metrics_needs_a_token_or_a_session_by_default(panel: Panel) -> None:
    anonymous = await panel.client.get("/metrics")
    assert anonymous.status_code == 401
    assert "panel_" not in anonymous.text and "edge_" not in anonymous.text
    await panel.as_role(Role.VIEWER)
    assert (await panel.client.get("/metrics")).status_code == 200


async def test_metrics_token_from_the_secrets_file_works_without_a_session(make_panel) -> None:  # type: ignore[no-untyped-def]
    async with make_panel(settings=panel_settings(metrics_token="scrape-me-please")) as panel:
        assert (await panel.client.get("/metrics")).status_code == 401
        wrong = await panel.client.get("/metrics", headers={"authorization": "Bearer nope"})
        assert wrong.status_code == 401
        ok = await panel.client.get("/metrics", headers={"authorization": "Bearer scrape-me-please"})
        assert ok.status_code == 200 and "# TYPE" in ok.text


async def test_metrics_can_be_opened_by_the_config(make_panel) -> None:  # type: ignore[no-untyped-def]
    async with make_panel(settings=panel_settings(metrics_public=True)) as panel:
        assert (await panel.client.get("/metrics")).status_code == 200


# ------------------------------------------------------------------------------------ login throttling


async def _try_login(client: httpx.AsyncClient, username: str, password: str) -> httpx.Response:
    page = await client.get("/login")
    return await client.post("/login", data={"username": username, "password": password,
                                             "csrf_token": csrf_from(page.text)})


def _client_from(panel: Panel, ip: str) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=panel.app, client=(ip, 40000))
    return httpx.AsyncClient(transport=transport, base_url="http://panel.test")


async def test_wrong_passwords_from_changing_addresses_do_not_lock_out_the_admin(panel: Panel) -> None:
    """The reported attack: 5 wrong passwords from changing addresses locked the only admin for 15 minutes."""
    await panel.add_user("admin", Role.ADMIN)
    await panel.login("admin")  # the control-room PC (127.0.0.1 here) has logged in before
    await panel.client.post("/logout", data={"csrf_token": csrf_from((await panel.client.get("/")).text)})
    for n in range(30):
        async with _client_from(panel, f"10.9.{n // 200}.{n % 200 + 1}") as attacker:
            response = await _try_login(attacker, "admin", f"guess-{n}")
            assert response.status_code in (401, 429)
    # The admin, from the address they always use, gets in at once with the right password.
    await panel.login("admin")


async def test_one_address_guessing_one_account_gets_growing_delays(panel: Panel) -> None:
    await panel.add_user("staff", Role.OPERATOR)
    settings = panel.ctx.settings
    async with _client_from(panel, "10.0.0.66") as attacker:
        for _ in range(settings.login_free_failures):
            assert (await _try_login(attacker, "staff", "wrong wrong")).status_code == 401
        delays = []
        for _ in range(4):
            response = await _try_login(attacker, "staff", "wrong wrong")
            if response.status_code == 401:  # the failure that starts the next delay
                response = await _try_login(attacker, "staff", "wrong wrong")
            assert response.status_code == 429
            delays.append(int(response.headers["retry-after"]))
            assert "秒后再试" in response.text
            panel.clock.advance(delays[-1])
        assert delays == sorted(delays) and delays[-1] > delays[0], delays
        # Even the right password waits while the delay runs (otherwise it would not slow guessing).
        assert (await _try_login(attacker, "staff", "wrong wrong")).status_code == 401
        throttled = await _try_login(attacker, "staff", PASSWORD)
        assert throttled.status_code == 429
        panel.clock.advance(int(throttled.headers["retry-after"]))
        assert (await _try_login(attacker, "staff", PASSWORD)).status_code == 303
    # Another address is not slowed down by this one's failures.
    async with _client_from(panel, "10.0.0.7") as other:
        assert (await _try_login(other, "staff", PASSWORD)).status_code == 303


async def test_throttling_raises_a_security_event_staff_can_see(panel: Panel) -> None:
    await panel.add_user("staff", Role.OPERATOR)
    async with _client_from(panel, "10.0.0.66") as attacker:
        for _ in range(panel.ctx.settings.login_free_failures + 2):
            await _try_login(attacker, "staff", "wrong wrong")
    rows = await sql_rows(panel.store, "SELECT code, severity, message, data FROM events WHERE code='panel.login_throttled'")
    assert len(rows) == 1, rows  # one event per throttled streak, not one per attempt
    _code, severity, message, data = rows[0]
    assert severity == "warning" and "staff" in message and "登录" in message
    assert "10.0.0.66" in data
    await panel.as_role(Role.ADMIN)
    page = await panel.client.get("/admin/audit")
    assert "panel.login_throttled" in page.text and "10.0.0.66" in page.text


async def test_admin_can_lift_a_throttle(panel: Panel) -> None:
    await panel.add_user("staff", Role.OPERATOR)
    async with _client_from(panel, "10.0.0.66") as attacker:
        for _ in range(panel.ctx.settings.login_free_failures + 1):
            await _try_login(attacker, "staff", "wrong wrong")
        assert (await _try_login(attacker, "staff", PASSWORD)).status_code == 429
        admin = panel.new_client()
        csrf = await panel.as_role(Role.ADMIN, client=admin)
        assert (await admin.post("/admin/users/staff", data={"action": "unlock", "csrf_token": csrf})).status_code == 303
        assert (await _try_login(attacker, "staff", PASSWORD)).status_code == 303


# ------------------------------------------------------------------------------------ HSTS


async def test_hsts_when_the_panel_is_reached_over_tls(panel: Panel) -> None:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=panel.app), base_url="https://panel.test") as tls:
        response = await tls.get("/login")
        assert "max-age=" in response.headers["strict-transport-security"]
        assert "strict-transport-security" in (await tls.get("/static/panel.css")).headers
    plain = await panel.client.get("/login")
    assert "strict-transport-security" not in plain.headers  # over plain HTTP the header means nothing


# ------------------------------------------------------------------------------------ password strength

WEAK = ["1234567890", "password123", "qwertyuiop", "aaaaaaaaaaaa", "abcdefghij", "1111111111", "admin12345",
        "iloveyou123", "woaini1314520", "zhangwei1988", "1qaz2wsx3edc", "Password1!", "88888888888"]


@pytest.mark.parametrize("password", WEAK)
def test_common_and_patterned_passwords_are_refused(password: str) -> None:
    with pytest.raises(PasswordPolicyError):
        Passwords().check_policy(password, "admin")


@pytest.mark.parametrize("password", [PASSWORD, "Tr0ub4dor&3x", "蓝色的泵房在三楼北侧", "s3cret-for-tests", "a-long-secret-1"])
def test_strong_passwords_are_accepted(password: str) -> None:
    Passwords().check_policy(password, "admin")


def test_a_password_built_from_the_user_name_is_refused() -> None:
    with pytest.raises(PasswordPolicyError):
        Passwords().check_policy("wangxiaoming2024", "wangxiaoming")


async def test_weak_password_messages_are_in_the_users_language(panel: Panel) -> None:
    csrf = await panel.as_role(Role.ADMIN)
    response = await panel.client.post("/admin/users", data={"username": "newbie", "role": "viewer",
                                                             "password": "1234567890", "csrf_token": csrf})
    assert response.status_code == 422
    flash = re.search(r'<p class="flash error"[^>]*>(.*?)</p>', response.text, re.S)
    assert flash is not None
    text = flash.group(1)
    assert "密码" in text
    assert not re.search(r"\b(characters|guess|common|pattern|distinct|too|weak)\b", text), text  # no English
    api = await panel.client.post("/api/v1/users", json={"username": "newbie", "role": "viewer",
                                                         "password": "1234567890"},
                                  headers={"x-csrf-token": csrf})
    assert api.status_code == 422
    assert await panel.ctx.users.by_name("newbie") is None


# ------------------------------------------------------------------------------------ lab mode banner (defect 9)


async def test_lab_mode_banner_on_every_page(panel: Panel) -> None:
    pages = ["/", "/devices", "/alarms", "/alarms/history", "/cameras", "/tools", "/admin/users", "/account"]
    await panel.as_role(Role.ADMIN)
    for path in pages:
        assert 'id="lab-mode-banner"' not in (await panel.client.get(path)).text, path
    text = panel.config_path.read_text(encoding="utf-8")
    assert "url: https://127.0.0.1:9\n" in text
    panel.config_path.write_text(text.replace("url: https://127.0.0.1:9\n",
                                              "url: http://127.0.0.1:9\n  lab_mode_insecure: true\n"), encoding="utf-8")
    for path in pages:
        html = (await panel.client.get(path)).text
        assert 'id="lab-mode-banner"' in html and "实验室模式" in html, path
    anonymous = await panel.new_client().get("/login")
    assert 'id="lab-mode-banner"' in anonymous.text
    english = panel.new_client()
    english.cookies.set("edge_lang", "en", domain="panel.test")
    assert "Lab mode" in (await english.get("/login")).text


async def test_no_route_but_login_setup_and_liveness_answers_anonymous_callers(panel: Panel) -> None:
    """The class /metrics belonged to: every GET route needs a login (or a token), but the public few."""
    from edge.panel import routes

    public = {"/login", "/setup", "/healthz"}
    modules = [getattr(routes, name) for name in routes.__all__]
    templates = sorted({r.path for m in modules for r in [*m.router.routes, *routes.system.open_router.routes]
                        if isinstance(r, APIRoute) and "GET" in r.methods})
    assert len(templates) >= 20
    await panel.add_user("someone", Role.ADMIN)  # past setup: /setup sends to /login
    anonymous = panel.new_client()
    open_to_all = []
    for template in templates:
        response = await anonymous.get(_fill(template, "x"))
        if response.status_code == 200 and template not in public:
            open_to_all.append(template)
    assert open_to_all == []
