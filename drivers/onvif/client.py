"""ONVIF device and media services through onvif-zeep-async, with errors mapped onto ``edge.errors``.

What the gateway asks a camera: the clock (GetSystemDateAndTime, unauthenticated where the camera
allows it), who it is (GetDeviceInformation, GetScopes, GetHostname), its media profiles
(GetProfiles), and where to get pictures (GetStreamUri for RTSP, GetSnapshotUri for JPEGs).

*Cameras that want a login for everything*: ONVIF lists GetSystemDateAndTime as a pre-auth
operation, but some firmware answers it with NotAuthorized (or HTTP 401) unless a login comes
with it. ``connect`` then connects without the library's unauthenticated clock handshake (tokens
stamped with gateway time, which such a camera accepts when the clocks are close; a wrong password
still fails, as ``OnvifAuthError``), and ``measure_clock_offset`` asks again *with* the login, so the
clock is still checked and reported. A camera that refuses a login outright answers HTTP 401 or a
NotAuthorized fault; both are ``OnvifAuthError`` ("credentials refused").

*Authentication* is a WS-Security UsernameToken with a password digest (SHA-1 of nonce, creation
time and password), never the plain-text variant. Cameras reject tokens whose ``Created`` time is
too far from their own clock, and camera clocks drift (or were never set), so the camera's clock
offset is measured first (``adjust_time``) and every token is stamped in camera time. The offset
is also reported (``clock_offset_s``) so a camera whose clock is wrong shows up in health.

*XML safety*: zeep parses replies with lxml, entities unresolved; on import of this module we
also make it refuse any reply with a DTD at all (``forbid_dtd``), forbid external references, and
switch off lxml's "huge tree" mode that onvif-zeep-async turns on (it lifts libxml2's limits
against entity and depth bombs). The bundled WSDLs have no DTDs, so this costs nothing.

*TLS*: onvif-zeep-async builds its aiohttp sessions with certificate verification off; cameras
here are reached over plain HTTP on the estate LAN, and an ``https://`` camera host is refused
until the library can verify it (``ConfigError``) rather than silently trusted.

*Errors*: everything the library or zeep raises is mapped at ``_call`` onto ``DeviceTimeout``,
``DeviceUnreachable``, ``OnvifAuthError`` (a ``DeviceProtocolError``) or ``DeviceProtocolError``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

import aiohttp
import zeep.exceptions

from drivers.camera.auth import CameraAuthError
from edge.errors import ConfigError, DeviceProtocolError, DeviceTimeout, DeviceUnreachable

# onvif.client calls logging.basicConfig(level=INFO) when imported, which would take over the root
# logger before the gateway configures it. Undo exactly what that import added.
_root = logging.getLogger()
_handlers_before, _level_before = list(_root.handlers), _root.level
from onvif import ONVIFCamera  # noqa: E402
from onvif.exceptions import ONVIFAuthError, ONVIFError, ONVIFTimeoutError  # noqa: E402
from onvif.settings import DEFAULT_SETTINGS  # noqa: E402

for _handler in [h for h in _root.handlers if h not in _handlers_before]:
    _root.removeHandler(_handler)
_root.setLevel(_level_before)

log = logging.getLogger(__name__)

# Harden zeep's XML parsing for every ONVIF reply (see the module docstring).
DEFAULT_SETTINGS.forbid_dtd = True
DEFAULT_SETTINGS.forbid_entities = True
DEFAULT_SETTINGS.forbid_external = True
DEFAULT_SETTINGS.xml_huge_tree = False

T = TypeVar("T")


class OnvifAuthError(CameraAuthError):
    """The camera refused our credentials (or our clock, if the offset could not be measured)."""


@dataclass(frozen=True, slots=True)
class DeviceInfo:
    manufacturer: str
    model: str
    firmware: str
    serial: str
    hardware_id: str


@dataclass(frozen=True, slots=True)
class MediaProfile:
    token: str
    name: str
    encoding: str | None
    width: int | None
    height: int | None
    fps: float | None


def _fault_is_auth(fault: zeep.exceptions.Fault) -> bool:
    subcodes = " ".join(getattr(q, "localname", str(q)) for q in (fault.subcodes or []))
    text = " ".join(str(x) for x in (fault.message, fault.code, subcodes) if x)
    return "NotAuthorized" in text or "FailedAuthentication" in text or "Unauthorized" in text


class OnvifClient:
    """One camera's ONVIF services. Use as ``async with OnvifClient(...) as cam:``."""

    def __init__(
        self,
        device_id: str,
        host: str,
        port: int,
        username: str | None,
        password: str | None,
        *,
        timeout_s: float = 5.0,
    ) -> None:
        if host.startswith("https://"):
            raise ConfigError(
                f"camera {device_id}: ONVIF over HTTPS is not supported (the library cannot verify certificates)"
            )
        self.device_id = device_id
        self.host = host
        self.port = port
        self._username = username
        self._password = password
        self._timeout = timeout_s
        self._camera: ONVIFCamera | None = None
        self.clock_offset_s: float | None = None

    async def __aenter__(self) -> OnvifClient:
        await self.connect()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def connect(self) -> None:
        """Measure the clock offset, then discover service addresses (GetServices).

        A camera that wants a login even for its clock is connected without the unauthenticated
        handshake, and its clock measured with the login (see the module docstring).
        """
        try:
            await self._connect(adjust_time=True)
        except OnvifAuthError:
            if not self._username:
                raise
            log.info("camera %s: GetSystemDateAndTime needs a login; checking the clock with it", self.device_id)
            await self._connect(adjust_time=False)
            try:
                await self.measure_clock_offset()
            except BaseException:
                await self.close()
                raise
            return
        assert self._camera is not None
        diff = self._camera.dt_diff
        self.clock_offset_s = diff.total_seconds() if diff is not None else None

    async def _connect(self, *, adjust_time: bool) -> None:
        await self.close()
        self._camera = ONVIFCamera(
            self.host, self.port, self._username, self._password, no_cache=True, adjust_time=adjust_time,
        )
        try:
            await self._call(self._camera.update_xaddrs(), "GetServices")
        except BaseException:
            await self.close()
            raise

    async def close(self) -> None:
        camera, self._camera = self._camera, None
        if camera is not None:
            try:
                await camera.close()
            except Exception as exc:  # closing a half-open aiohttp session must not mask the real error
                log.debug("camera %s: error while closing ONVIF client: %s", self.device_id, exc)

    def _require(self) -> ONVIFCamera:
        if self._camera is None:
            raise RuntimeError("OnvifClient used before connect()")
        return self._camera

    async def _call(self, awaitable: Awaitable[T], operation: str) -> T:
        detail = f"ONVIF {operation} at {self.host}:{self.port}"
        try:
            async with asyncio.timeout(self._timeout):
                return await awaitable
        except (TimeoutError, ONVIFTimeoutError) as exc:
            raise DeviceTimeout(self.device_id, f"no answer within {self._timeout} s", detail=detail) from exc
        except ONVIFAuthError as exc:
            raise OnvifAuthError(self.device_id, "credentials refused", detail=detail) from exc
        except ONVIFError as exc:
            raise self._map(exc.__cause__ or exc, detail) from exc
        except Exception as exc:
            raise self._map(exc, detail) from exc

    def _map(self, exc: BaseException, detail: str) -> Exception:
        if isinstance(exc, TimeoutError):
            return DeviceTimeout(self.device_id, f"no answer within {self._timeout} s", detail=detail)
        if isinstance(exc, (zeep.exceptions.DTDForbidden, zeep.exceptions.EntitiesForbidden,
                            zeep.exceptions.ExternalReferenceForbidden)):
            return DeviceProtocolError(
                self.device_id, f"refused a reply declaring a DTD or entities (possible XXE): {type(exc).__name__}",
                detail=detail,
            )
        if isinstance(exc, zeep.exceptions.TransportError) and exc.status_code in (401, 403):
            return OnvifAuthError(self.device_id, f"credentials refused (HTTP {exc.status_code})", detail=detail)
        if isinstance(exc, zeep.exceptions.Fault):
            if _fault_is_auth(exc):
                return OnvifAuthError(self.device_id, f"credentials refused: {exc.message}", detail=detail)
            return DeviceProtocolError(self.device_id, f"SOAP fault: {exc.message}", detail=detail)
        if isinstance(exc, (aiohttp.ClientConnectorError, ConnectionError, OSError)):
            return DeviceUnreachable(self.device_id, f"cannot connect: {exc}", detail=detail)
        if isinstance(exc, (aiohttp.ClientError, zeep.exceptions.Error)):
            return DeviceProtocolError(self.device_id, f"{type(exc).__name__}: {exc}", detail=detail)
        return DeviceProtocolError(self.device_id, f"unexpected {type(exc).__name__}: {exc}", detail=detail)

    # -- operations ------------------------------------------------------------------------------

    async def measure_clock_offset(self) -> float:
        """Camera UTC minus gateway UTC, seconds; the midpoint of the round trip is the gateway side.

        Asked without credentials first (a pre-auth operation), so it doubles as the reachability
        check; a camera that refuses that is asked again with the login. Resolution is one second
        (ONVIF's DateTime has whole seconds).
        """
        camera = self._require()
        service = await self._call(camera.create_devicemgmt_service(), "GetSystemDateAndTime")
        sent = time.time()
        try:
            reply: Any = await self._call(service.authless_GetSystemDateAndTime(), "GetSystemDateAndTime")
        except OnvifAuthError:
            if not self._username:
                raise
            sent = time.time()
            reply = await self._call(service.GetSystemDateAndTime(), "GetSystemDateAndTime (with login)")
        received = time.time()
        try:
            u = reply.UTCDateTime
            camera_utc = datetime(u.Date.Year, u.Date.Month, u.Date.Day, u.Time.Hour, u.Time.Minute,
                                  u.Time.Second, tzinfo=UTC)
        except AttributeError as exc:
            raise DeviceProtocolError(self.device_id, "GetSystemDateAndTime without UTCDateTime") from exc
        offset = camera_utc.timestamp() + 0.5 - (sent + received) / 2  # +0.5: the camera truncates seconds
        self.clock_offset_s = offset
        return offset

    async def device_information(self) -> DeviceInfo:
        camera = self._require()
        service = await self._call(camera.create_devicemgmt_service(), "GetDeviceInformation")
        reply: Any = await self._call(service.GetDeviceInformation(), "GetDeviceInformation")
        return DeviceInfo(
            manufacturer=str(reply.Manufacturer or ""), model=str(reply.Model or ""),
            firmware=str(reply.FirmwareVersion or ""), serial=str(reply.SerialNumber or ""),
            hardware_id=str(reply.HardwareId or ""),
        )

    async def scopes(self) -> list[str]:
        """The camera's scope URIs (``onvif://www.onvif.org/name/...``, ``.../location/...``)."""
        camera = self._require()
        service = await self._call(camera.create_devicemgmt_service(), "GetScopes")
        reply: Any = await self._call(service.GetScopes(), "GetScopes")
        return [str(item.ScopeItem) for item in reply or [] if getattr(item, "ScopeItem", None)]

    async def hostname(self) -> str:
        camera = self._require()
        service = await self._call(camera.create_devicemgmt_service(), "GetHostname")
        reply: Any = await self._call(service.GetHostname(), "GetHostname")
        return str(getattr(reply, "Name", "") or "")

    async def profiles(self) -> list[MediaProfile]:
        camera = self._require()
        media = await self._call(camera.create_media_service(), "GetProfiles")
        reply: Any = await self._call(media.GetProfiles(), "GetProfiles")
        profiles: list[MediaProfile] = []
        for p in reply or []:
            enc = getattr(p, "VideoEncoderConfiguration", None)
            res = getattr(enc, "Resolution", None) if enc is not None else None
            rate = getattr(enc, "RateControl", None) if enc is not None else None
            profiles.append(MediaProfile(
                token=str(p.token), name=str(getattr(p, "Name", "") or ""),
                encoding=str(enc.Encoding) if enc is not None and enc.Encoding else None,
                width=int(res.Width) if res is not None else None,
                height=int(res.Height) if res is not None else None,
                fps=float(rate.FrameRateLimit) if rate is not None and rate.FrameRateLimit else None,
            ))
        if not profiles:
            raise DeviceProtocolError(self.device_id, "camera has no media profiles", detail="ONVIF GetProfiles")
        return profiles

    async def limit_frame_rate(self, profile_token: str, fps: int) -> int | None:
        """Ask the camera to encode ``profile_token`` at ``fps`` frames/s, GOP one second.

        SetVideoEncoderConfiguration (not persisted): a camera sending 15 fps to a gateway that
        analyses 1 frame/s makes it decode 14 frames for nothing. Returns the rate the profile now
        has, or None when it has no encoder configuration; a camera that already sends at most
        ``fps`` is left alone. Raises ``DeviceError`` when the camera refuses (some allow only
        certain rates, or no changes at all).
        """
        camera = self._require()
        media = await self._call(camera.create_media_service(), "GetProfile")
        profile: Any = await self._call(media.GetProfile({"ProfileToken": profile_token}), "GetProfile")
        encoder = getattr(profile, "VideoEncoderConfiguration", None)
        if encoder is None:
            return None
        rate = getattr(encoder, "RateControl", None)
        if rate is None:
            return None
        if rate.FrameRateLimit and int(rate.FrameRateLimit) <= fps:
            return int(rate.FrameRateLimit)
        rate.FrameRateLimit = fps
        if getattr(encoder, "H264", None) is not None:
            encoder.H264.GovLength = fps
        await self._call(
            media.SetVideoEncoderConfiguration({"Configuration": encoder, "ForcePersistence": False}),
            "SetVideoEncoderConfiguration",
        )
        return fps

    async def stream_uri(self, profile_token: str) -> str:
        camera = self._require()
        media = await self._call(camera.create_media_service(), "GetStreamUri")
        request = {
            "StreamSetup": {"Stream": "RTP-Unicast", "Transport": {"Protocol": "RTSP"}},
            "ProfileToken": profile_token,
        }
        reply: Any = await self._call(media.GetStreamUri(request), "GetStreamUri")
        uri = str(getattr(reply, "Uri", "") or "")
        if not uri.startswith(("rtsp://", "rtsps://")):
            raise DeviceProtocolError(self.device_id, f"GetStreamUri returned {uri!r}", detail="ONVIF GetStreamUri")
        return uri

    async def snapshot_uri(self, profile_token: str) -> str:
        camera = self._require()
        media = await self._call(camera.create_media_service(), "GetSnapshotUri")
        reply: Any = await self._call(media.GetSnapshotUri({"ProfileToken": profile_token}), "GetSnapshotUri")
        uri = str(getattr(reply, "Uri", "") or "")
        if not uri.startswith(("http://", "https://")):
            raise DeviceProtocolError(
                self.device_id, f"GetSnapshotUri returned {uri!r}", detail="ONVIF GetSnapshotUri"
            )
        return uri
