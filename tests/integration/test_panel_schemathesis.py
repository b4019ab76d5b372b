"""Schemathesis against the panel's OpenAPI schema, on a real server, as an admin: no server errors.

Every operation of ``/api/v1`` gets generated requests (valid and invalid bodies, odd path and query
values); the check is that none answers 5xx. The session cookie and CSRF header of a logged-in admin
go with every request, so the generator reaches the handlers rather than stopping at 401/403.
The test-device and discovery hooks are real callables (they answer from fixed data), so those
operations run their code paths too.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error

from edge.panel import DiscoveredDevice, PanelHooks
from edge.panel.roles import Role
from edge.panel.security import SESSION_COOKIE
from edge.probes import DeviceProbe, ProbeFrame, ProbeValue
from tests.helpers.panel import PanelServer, alarm

EXAMPLES = 15  # per operation and generation mode: about 30 requests per operation in all


async def _test_device(device_id: str) -> DeviceProbe:
    return DeviceProbe(device_id, True, (ProbeFrame("tx", b"\x01\x03\x00\x00\x00\x01"),),
                       (ProbeValue("pressure", 0.3, "MPa"),), duration_ms=1.0)


async def _discover() -> list[DiscoveredDevice]:
    return [DiscoveredDevice("urn:uuid:1", ("http://127.0.0.1/onvif/device_service",), (), "cam", "IPC")]


@pytest.fixture(scope="module")
def panel_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PanelServer]:
    tmp: Path = tmp_path_factory.mktemp("schemathesis")
    hooks = PanelHooks(test_device=_test_device, discover=_discover)
    with PanelServer(tmp, hooks=hooks) as server:
        server.add_user("fuzz-admin", Role.ADMIN)
        server.call(server.store.append_alarm_records([alarm("A1"), alarm("A2", device_id="wm-2")]))  # type: ignore[union-attr]
        yield server


@pytest.fixture(scope="module")
def auth(panel_server: PanelServer) -> dict[str, str]:
    with panel_server.client() as client:
        csrf = panel_server.login(client, "fuzz-admin")
        return {"Cookie": f"{SESSION_COOKIE}={client.cookies[SESSION_COOKIE]}", "X-CSRF-Token": csrf}


@pytest.fixture(scope="module")
def api_schema(panel_server: PanelServer, auth: dict[str, str]):  # type: ignore[no-untyped-def]
    with panel_server.client(headers=auth) as client:
        document = client.get("/api/v1/openapi.json").json()
    document["servers"] = [{"url": panel_server.url}]
    return schemathesis.openapi.from_dict(document)


def _operations() -> list[tuple[str, str]]:
    """The API's operations, from the app's own schema (built offline, so pytest can name each test)."""
    import tempfile

    from edge.panel import create_app
    from edge.store import Store
    from tests.helpers.panel import write_panel_estate

    with tempfile.TemporaryDirectory() as tmp:
        config_path, secrets_path = write_panel_estate(Path(tmp))
        unopened = Store(Path(tmp) / "never-opened.db")  # the schema needs the routes, not the file
        document = create_app(unopened, config_path, secrets_path).openapi()
    return [(method.upper(), path) for path, methods in document["paths"].items() for method in methods]


OPERATIONS = _operations()


def test_the_api_has_the_operations_the_pages_use() -> None:
    assert len(OPERATIONS) >= 20
    assert ("POST", "/api/v1/alarms/{alarm_id}/resolve") in OPERATIONS
    assert ("PUT", "/api/v1/cameras/{camera_id}/zones") in OPERATIONS


@pytest.mark.parametrize(("method", "path"), OPERATIONS, ids=[f"{m} {p}" for m, p in OPERATIONS])
def test_no_server_errors(method: str, path: str, api_schema, auth: dict[str, str],  # type: ignore[no-untyped-def]
                          panel_server: PanelServer) -> None:
    operation = api_schema[path][method]
    calls = {"n": 0}
    for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

        @settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
                  phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
        @given(case=operation.as_strategy(generation_mode=mode))
        def run(case) -> None:  # type: ignore[no-untyped-def]
            calls["n"] += 1
            case.call_and_validate(base_url=panel_server.url, headers=auth, checks=[not_a_server_error])

        try:
            run()
        except Unsatisfiable:
            # Nothing to make invalid (an operation without parameters or body): negative mode has no cases.
            assert mode is GenerationMode.NEGATIVE
    assert calls["n"] >= 1
