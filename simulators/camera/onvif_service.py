"""ONVIF device and media services of one simulated camera (SOAP 1.2 over HTTP), plus its JPEG snapshot.

Implements what the gateway's driver and common ONVIF clients ask a camera: GetSystemDateAndTime,
GetDeviceInformation, GetCapabilities, GetServices, GetScopes, GetHostname, GetNetworkInterfaces
(device service) and GetProfiles, GetProfile, GetVideoSources, GetVideoEncoderConfiguration,
SetVideoEncoderConfiguration (frame rate only), GetStreamUri, GetSnapshotUri (media service), with
one profile per stream (a main stream, and a sub-stream when the camera has one). A frame rate set
through SetVideoEncoderConfiguration is what that stream then carries (``StreamProfile.fps``). Requests
are parsed with defusedxml (a DTD or entity declaration is refused with a SOAP fault, so the
simulator itself is not an XXE target). Every operation except the pre-auth ones
(GetSystemDateAndTime, GetServices, GetCapabilities, as ONVIF Core 5.12.1 allows) needs a
WS-Security UsernameToken with a password digest::

    PasswordDigest = Base64( SHA-1( nonce_bytes + Created + password ) )

checked against the camera's own clock (``clock_offset_s`` makes it deliberately wrong, to
exercise the driver's clock-offset handling): a ``Created`` more than ``MAX_SKEW_S`` away, a
reused nonce, or a wrong digest gets ``ter:NotAuthorized``. The snapshot is served behind HTTP
digest authentication (RFC 7616, MD5, qop=auth), like most cameras, or HTTP Basic (``http_auth``).

Stricter, like cameras seen in the field: ``clock_needs_auth`` makes GetSystemDateAndTime need a
login too (some firmware ignores the pre-auth list), and ``auth_failure_status=401`` answers a
refused login with HTTP 401 instead of a SOAP fault with HTTP 400.

``hostile=True`` turns the camera into an attacker: GetDeviceInformation answers with an XXE
payload (an external entity reading a local file), to prove the driver refuses it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from xml.etree.ElementTree import Element

from aiohttp import web
from defusedxml import ElementTree as SafeET
from defusedxml.common import DefusedXmlException

SOAP_ENV = "http://www.w3.org/2003/05/soap-envelope"
WSSE = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
WSU = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd"
TDS = "http://www.onvif.org/ver10/device/wsdl"
TRT = "http://www.onvif.org/ver10/media/wsdl"
TT = "http://www.onvif.org/ver10/schema"
MAX_SKEW_S = 300.0
PRE_AUTH = {"GetSystemDateAndTime", "GetServices", "GetCapabilities"}


@dataclass
class CameraIdentity:
    camera_id: str
    manufacturer: str = "EstateSim"
    model: str = "SimCam-1"
    firmware: str = "1.0.0"
    serial: str = ""
    hardware_id: str = "sim-1"


@dataclass
class StreamProfile:
    """One media profile: an encoder configuration and the RTSP URI that serves it."""

    token: str
    name: str
    width: int
    height: int
    fps: int
    stream_uri: str


@dataclass
class MediaInfo:
    """The camera's video source (sensor size) and its profiles; the first profile is the main stream."""

    width: int
    height: int
    fps: int
    stream_uri: str
    snapshot_path: str
    profiles: list[StreamProfile] | None = None

    def __post_init__(self) -> None:
        if not self.profiles:
            self.profiles = [StreamProfile("main", "MainStream", self.width, self.height, self.fps, self.stream_uri)]

    def profile(self, token: str) -> StreamProfile | None:
        return next((p for p in self.profiles or () if p.token == token), None)


def _envelope(body: str) -> str:
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        f'<s:Envelope xmlns:s="{SOAP_ENV}" xmlns:tds="{TDS}" xmlns:trt="{TRT}" xmlns:tt="{TT}" '
        'xmlns:ter="http://www.onvif.org/ver10/error">'
        f"<s:Body>{body}</s:Body></s:Envelope>"
    )


def _fault(code: str, subcode: str, reason: str) -> str:
    return _envelope(
        f"<s:Fault><s:Code><s:Value>s:{code}</s:Value><s:Subcode><s:Value>{subcode}</s:Value></s:Subcode>"
        f'</s:Code><s:Reason><s:Text xml:lang="en">{reason}</s:Text></s:Reason></s:Fault>'
    )


def password_digest(nonce: bytes, created: str, password: str) -> str:
    return base64.b64encode(hashlib.sha1(nonce + created.encode() + password.encode()).digest()).decode()


def _parse_created(text: str) -> datetime:
    value = text.strip().replace("Z", "+00:00")
    created = datetime.fromisoformat(value)
    return created if created.tzinfo else created.replace(tzinfo=UTC)


class OnvifCameraService:
    """The HTTP side of one simulated camera. ``snapshot`` returns the current JPEG frame."""

    def __init__(
        self,
        identity: CameraIdentity,
        media: MediaInfo,
        snapshot: Callable[[], bytes | None],
        *,
        username: str,
        password: str,
        host: str = "127.0.0.1",
        port: int = 0,
        clock_offset_s: float = 0.0,
        hostile: bool = False,
        http_auth: str = "digest",
        clock_needs_auth: bool = False,
        auth_failure_status: int = 400,
        scopes: tuple[str, ...] = (),
    ) -> None:
        if http_auth not in ("digest", "basic"):
            raise ValueError(f"http_auth must be 'digest' or 'basic', not {http_auth!r}")
        self.identity = identity
        self.http_auth = http_auth
        self.pre_auth = PRE_AUTH - {"GetSystemDateAndTime"} if clock_needs_auth else PRE_AUTH
        self.auth_failure_status = auth_failure_status
        self.scopes = scopes
        self.media = media
        self.snapshot = snapshot
        self.username = username
        self.password = password
        self.host = host
        self.port = port
        self.clock_offset_s = clock_offset_s
        self.hostile = hostile
        self.requests: list[str] = []  # operation names, for tests
        self.auth_failures = 0
        self.rate_changes: list[tuple[str, int]] = []  # (profile token, fps) set by clients, for tests
        self._nonces: OrderedDict[bytes, float] = OrderedDict()
        self._http_nonces: OrderedDict[str, float] = OrderedDict()
        self._realm = f"{identity.camera_id}@estate-sim"
        self._runner: web.AppRunner | None = None

    # -- lifecycle ---------------------------------------------------------------------------------

    def app(self) -> web.Application:
        app = web.Application(client_max_size=256 * 1024)
        app.router.add_post("/onvif/device_service", self._soap)
        app.router.add_post("/onvif/media_service", self._soap)
        app.router.add_get(self.media.snapshot_path, self._snapshot)
        return app

    async def start(self) -> None:
        self._runner = web.AppRunner(self.app(), access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        if self.port == 0:
            server = site._server  # aiohttp exposes the bound socket only here
            assert server is not None
            self.port = server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def camera_now(self) -> datetime:
        return datetime.now(UTC) + timedelta(seconds=self.clock_offset_s)

    # -- SOAP --------------------------------------------------------------------------------------

    async def _soap(self, request: web.Request) -> web.Response:
        body = await request.read()
        try:
            root = SafeET.fromstring(body, forbid_dtd=True, forbid_entities=True, forbid_external=True)
        except DefusedXmlException as exc:
            return self._reply(_fault("Sender", "ter:WellFormed", f"refused: {type(exc).__name__}"), 400)
        except SafeET.ParseError:
            return self._reply(_fault("Sender", "ter:WellFormed", "malformed XML"), 400)
        body_el = root.find(f"{{{SOAP_ENV}}}Body")
        if body_el is None or len(body_el) == 0:
            return self._reply(_fault("Sender", "ter:InvalidArgVal", "no SOAP body"), 400)
        operation_el = body_el[0]
        operation = operation_el.tag.rsplit("}", 1)[-1]
        self.requests.append(operation)
        if operation not in self.pre_auth:
            problem = self._check_wsse(root)
            if problem is not None:
                self.auth_failures += 1
                return self._reply(_fault("Sender", "ter:NotAuthorized", problem), self.auth_failure_status)
        handler = getattr(self, f"_op_{operation}", None)
        if handler is None:
            return self._reply(_fault("Receiver", "ter:ActionNotSupported", f"{operation} not supported"), 400)
        try:
            text = _envelope(handler(operation_el))
        except _HostileReply as hostile:
            text = hostile.text
        except _SoapFault as fault:
            return self._reply(_fault(fault.code, fault.subcode, fault.reason), 400)
        return self._reply(text, 200)

    def _reply(self, text: str, status: int) -> web.Response:
        return web.Response(text=text, status=status, content_type="application/soap+xml", charset="utf-8")

    def _check_wsse(self, root: Element) -> str | None:
        token = root.find(f".//{{{WSSE}}}UsernameToken")
        if token is None:
            return "no UsernameToken"
        user = token.findtext(f"{{{WSSE}}}Username") or ""
        password = token.find(f"{{{WSSE}}}Password")
        nonce_text = token.findtext(f"{{{WSSE}}}Nonce") or ""
        created_text = token.findtext(f"{{{WSU}}}Created") or ""
        if password is None or not password.get("Type", "").endswith("#PasswordDigest"):
            return "a password digest is required"
        try:
            nonce = base64.b64decode(nonce_text, validate=True)
            created = _parse_created(created_text)
        except ValueError:
            return "bad Nonce or Created"
        skew = abs((created - self.camera_now()).total_seconds())
        if skew > MAX_SKEW_S:
            return f"Created is {skew:.0f} s away from the camera clock"
        now = time.monotonic()
        while self._nonces and next(iter(self._nonces.values())) < now - 2 * MAX_SKEW_S:
            self._nonces.popitem(last=False)
        if nonce in self._nonces:
            return "nonce replayed"
        expected = password_digest(nonce, created_text.strip(), self.password)
        if user != self.username or not hmac.compare_digest(expected, (password.text or "").strip()):
            return "wrong user name or password"
        self._nonces[nonce] = now
        return None

    # -- operations --------------------------------------------------------------------------------

    def _op_GetSystemDateAndTime(self, _el: Element) -> str:
        now = self.camera_now()

        def dt(d: datetime) -> str:
            return (
                f"<tt:Time><tt:Hour>{d.hour}</tt:Hour><tt:Minute>{d.minute}</tt:Minute>"
                f"<tt:Second>{d.second}</tt:Second></tt:Time><tt:Date><tt:Year>{d.year}</tt:Year>"
                f"<tt:Month>{d.month}</tt:Month><tt:Day>{d.day}</tt:Day></tt:Date>"
            )

        local = now + timedelta(hours=8)
        return (
            "<tds:GetSystemDateAndTimeResponse><tds:SystemDateAndTime>"
            "<tt:DateTimeType>Manual</tt:DateTimeType><tt:DaylightSavings>false</tt:DaylightSavings>"
            "<tt:TimeZone><tt:TZ>CST-8</tt:TZ></tt:TimeZone>"
            f"<tt:UTCDateTime>{dt(now)}</tt:UTCDateTime><tt:LocalDateTime>{dt(local)}</tt:LocalDateTime>"
            "</tds:SystemDateAndTime></tds:GetSystemDateAndTimeResponse>"
        )

    def _op_GetDeviceInformation(self, _el: Element) -> str:
        i = self.identity
        if self.hostile:
            # Not wrapped by _envelope: the DOCTYPE must precede the root element.
            raise _HostileReply(
                '<?xml version="1.0"?>\n'
                '<!DOCTYPE s:Envelope [<!ENTITY xxe SYSTEM "file:///etc/hostname">]>'
                f'<s:Envelope xmlns:s="{SOAP_ENV}" xmlns:tds="{TDS}"><s:Body>'
                "<tds:GetDeviceInformationResponse><tds:Manufacturer>&xxe;</tds:Manufacturer>"
                "<tds:Model>x</tds:Model><tds:FirmwareVersion>x</tds:FirmwareVersion>"
                "<tds:SerialNumber>x</tds:SerialNumber><tds:HardwareId>x</tds:HardwareId>"
                "</tds:GetDeviceInformationResponse></s:Body></s:Envelope>"
            )
        return (
            f"<tds:GetDeviceInformationResponse><tds:Manufacturer>{i.manufacturer}</tds:Manufacturer>"
            f"<tds:Model>{i.model}</tds:Model><tds:FirmwareVersion>{i.firmware}</tds:FirmwareVersion>"
            f"<tds:SerialNumber>{i.serial or i.camera_id}</tds:SerialNumber>"
            f"<tds:HardwareId>{i.hardware_id}</tds:HardwareId></tds:GetDeviceInformationResponse>"
        )

    def _op_GetServices(self, _el: Element) -> str:
        def service(ns: str, path: str) -> str:
            return (
                f"<tds:Service><tds:Namespace>{ns}</tds:Namespace><tds:XAddr>{self.base_url}{path}</tds:XAddr>"
                "<tds:Version><tt:Major>2</tt:Major><tt:Minor>60</tt:Minor></tds:Version></tds:Service>"
            )

        return (
            "<tds:GetServicesResponse>"
            + service(TDS, "/onvif/device_service")
            + service(TRT, "/onvif/media_service")
            + "</tds:GetServicesResponse>"
        )

    def _op_GetCapabilities(self, _el: Element) -> str:
        return (
            "<tds:GetCapabilitiesResponse><tds:Capabilities>"
            f"<tt:Device><tt:XAddr>{self.base_url}/onvif/device_service</tt:XAddr></tt:Device>"
            f"<tt:Media><tt:XAddr>{self.base_url}/onvif/media_service</tt:XAddr>"
            "<tt:StreamingCapabilities><tt:RTPMulticast>false</tt:RTPMulticast><tt:RTP_TCP>true</tt:RTP_TCP>"
            "<tt:RTP_RTSP_TCP>true</tt:RTP_RTSP_TCP></tt:StreamingCapabilities></tt:Media>"
            "</tds:Capabilities></tds:GetCapabilitiesResponse>"
        )

    def _encoder_xml(self, p: StreamProfile, tag: str) -> str:
        return (
            f'<{tag} token="vec-{p.token}"><tt:Name>vec-{p.token}</tt:Name>'
            "<tt:UseCount>1</tt:UseCount><tt:Encoding>H264</tt:Encoding>"
            f"<tt:Resolution><tt:Width>{p.width}</tt:Width><tt:Height>{p.height}</tt:Height></tt:Resolution>"
            "<tt:Quality>5</tt:Quality><tt:RateControl>"
            f"<tt:FrameRateLimit>{p.fps}</tt:FrameRateLimit><tt:EncodingInterval>1</tt:EncodingInterval>"
            "<tt:BitrateLimit>2000</tt:BitrateLimit></tt:RateControl>"
            f"<tt:H264><tt:GovLength>{p.fps}</tt:GovLength><tt:H264Profile>Main</tt:H264Profile></tt:H264>"
            "<tt:Multicast><tt:Address><tt:Type>IPv4</tt:Type><tt:IPv4Address>0.0.0.0</tt:IPv4Address></tt:Address>"
            "<tt:Port>0</tt:Port><tt:TTL>1</tt:TTL><tt:AutoStart>false</tt:AutoStart></tt:Multicast>"
            f"<tt:SessionTimeout>PT60S</tt:SessionTimeout></{tag}>"
        )

    def _profile_xml(self, p: StreamProfile, tag: str) -> str:
        m = self.media
        return (
            f'<{tag} token="{p.token}" fixed="true"><tt:Name>{p.name}</tt:Name>'
            '<tt:VideoSourceConfiguration token="vsc0"><tt:Name>vsc0</tt:Name>'
            f"<tt:UseCount>{len(m.profiles or ())}</tt:UseCount><tt:SourceToken>vs0</tt:SourceToken>"
            f'<tt:Bounds x="0" y="0" width="{m.width}" height="{m.height}"/></tt:VideoSourceConfiguration>'
            + self._encoder_xml(p, "tt:VideoEncoderConfiguration") + f"</{tag}>"
        )

    def _op_GetProfiles(self, _el: Element) -> str:
        profiles = "".join(self._profile_xml(p, "trt:Profiles") for p in self.media.profiles or ())
        return f"<trt:GetProfilesResponse>{profiles}</trt:GetProfilesResponse>"

    def _op_GetProfile(self, el: Element) -> str:
        return f"<trt:GetProfileResponse>{self._profile_xml(self._requested_profile(el), 'trt:Profile')}</trt:GetProfileResponse>"

    def _encoder_profile(self, token: str) -> StreamProfile:
        profile = self.media.profile(token.removeprefix("vec-")) if token.startswith("vec-") else None
        if profile is None:
            raise _SoapFault("Sender", "ter:NoConfig", f"no video encoder configuration {token!r}")
        return profile

    def _op_GetVideoEncoderConfiguration(self, el: Element) -> str:
        token = (next((c.text for c in el if c.tag.endswith("}ConfigurationToken")), None) or "").strip()
        profile = self._encoder_profile(token)
        return (f"<trt:GetVideoEncoderConfigurationResponse>{self._encoder_xml(profile, 'trt:Configuration')}"
                "</trt:GetVideoEncoderConfigurationResponse>")

    def _op_SetVideoEncoderConfiguration(self, el: Element) -> str:
        """Only the frame rate may change (1 .. the sensor's rate); anything else is refused."""
        config = next((c for c in el if c.tag.endswith("}Configuration")), None)
        if config is None:
            raise _SoapFault("Sender", "ter:InvalidArgVal", "no Configuration")
        profile = self._encoder_profile(config.get("token", ""))
        width = next((e.text for e in config.iter() if e.tag.endswith("}Width")), None)
        height = next((e.text for e in config.iter() if e.tag.endswith("}Height")), None)
        if (width, height) != (str(profile.width), str(profile.height)):
            raise _SoapFault("Sender", "ter:ConfigModify", "the resolution of this camera's streams is fixed")
        rate = next((e.text for e in config.iter() if e.tag.endswith("}FrameRateLimit")), None)
        try:
            fps = int(float(rate or ""))
        except ValueError:
            raise _SoapFault("Sender", "ter:InvalidArgVal", f"FrameRateLimit {rate!r}") from None
        if not 1 <= fps <= self.media.fps:
            raise _SoapFault("Sender", "ter:ConfigModify", f"FrameRateLimit must be 1..{self.media.fps}")
        profile.fps = fps
        self.rate_changes.append((profile.token, fps))
        return "<trt:SetVideoEncoderConfigurationResponse/>"

    def _op_GetVideoSources(self, _el: Element) -> str:
        m = self.media
        return (
            f'<trt:GetVideoSourcesResponse><trt:VideoSources token="vs0"><tt:Framerate>{m.fps}</tt:Framerate>'
            f"<tt:Resolution><tt:Width>{m.width}</tt:Width><tt:Height>{m.height}</tt:Height></tt:Resolution>"
            "</trt:VideoSources></trt:GetVideoSourcesResponse>"
        )

    def _op_GetScopes(self, _el: Element) -> str:
        items = "".join(
            f"<tds:Scopes><tt:ScopeDef>Fixed</tt:ScopeDef><tt:ScopeItem>{scope}</tt:ScopeItem></tds:Scopes>"
            for scope in self.scopes
        )
        return f"<tds:GetScopesResponse>{items}</tds:GetScopesResponse>"

    def _op_GetHostname(self, _el: Element) -> str:
        return (
            "<tds:GetHostnameResponse><tds:HostnameInformation><tt:FromDHCP>false</tt:FromDHCP>"
            f"<tt:Name>cam-{self.identity.camera_id}</tt:Name></tds:HostnameInformation></tds:GetHostnameResponse>"
        )

    def _op_GetNetworkInterfaces(self, _el: Element) -> str:
        mac = hashlib.sha1(self.identity.camera_id.encode(), usedforsecurity=False).hexdigest()[:12]
        hw = ":".join(mac[i:i + 2] for i in range(0, 12, 2))
        return (
            '<tds:GetNetworkInterfacesResponse><tds:NetworkInterfaces token="eth0"><tt:Enabled>true</tt:Enabled>'
            f"<tt:Info><tt:Name>eth0</tt:Name><tt:HwAddress>{hw}</tt:HwAddress><tt:MTU>1500</tt:MTU></tt:Info>"
            "<tt:IPv4><tt:Enabled>true</tt:Enabled><tt:Config><tt:Manual>"
            f"<tt:Address>{self.host}</tt:Address><tt:PrefixLength>8</tt:PrefixLength></tt:Manual>"
            "<tt:DHCP>false</tt:DHCP></tt:Config></tt:IPv4></tds:NetworkInterfaces>"
            "</tds:GetNetworkInterfacesResponse>"
        )

    def _media_uri(self, tag: str, uri: str) -> str:
        return (
            f"<trt:{tag}><trt:MediaUri><tt:Uri>{uri}</tt:Uri><tt:InvalidAfterConnect>false</tt:InvalidAfterConnect>"
            "<tt:InvalidAfterReboot>false</tt:InvalidAfterReboot><tt:Timeout>PT0S</tt:Timeout>"
            f"</trt:MediaUri></trt:{tag}>"
        )

    def _requested_profile(self, el: Element) -> StreamProfile:
        token = (next((c.text for c in el if c.tag.endswith("}ProfileToken")), None) or "").strip()
        profile = self.media.profile(token)
        if profile is None:
            raise _SoapFault("Sender", "ter:NoProfile", f"no profile {token!r}")
        return profile

    def _op_GetStreamUri(self, el: Element) -> str:
        return self._media_uri("GetStreamUriResponse", self._requested_profile(el).stream_uri)

    def _op_GetSnapshotUri(self, el: Element) -> str:
        self._requested_profile(el)
        return self._media_uri("GetSnapshotUriResponse", f"{self.base_url}{self.media.snapshot_path}")

    # -- snapshot behind HTTP digest or basic authentication ---------------------------------------

    async def _snapshot(self, request: web.Request) -> web.Response:
        ok = self._http_basic_ok(request) if self.http_auth == "basic" else self._http_digest_ok(request)
        if not ok:
            if request.headers.get("Authorization"):
                self.auth_failures += 1
            return web.Response(status=401, headers={"WWW-Authenticate": self._challenge()}, text="unauthorised")
        jpeg = self.snapshot()
        if jpeg is None:
            return web.Response(status=503, text="no frame yet")
        return web.Response(body=jpeg, content_type="image/jpeg")

    def _challenge(self) -> str:
        if self.http_auth == "basic":
            return f'Basic realm="{self._realm}"'
        nonce = secrets.token_hex(16)
        self._http_nonces[nonce] = time.monotonic()
        while len(self._http_nonces) > 256:
            self._http_nonces.popitem(last=False)
        return f'Digest realm="{self._realm}", qop="auth", nonce="{nonce}", algorithm=MD5'

    def _http_basic_ok(self, request: web.Request) -> bool:
        header = request.headers.get("Authorization", "")
        if not header.startswith("Basic "):
            return False
        try:
            user, _, password = base64.b64decode(header[len("Basic "):], validate=True).decode().partition(":")
        except (ValueError, UnicodeDecodeError):
            return False
        return hmac.compare_digest(f"{user}:{password}".encode(), f"{self.username}:{self.password}".encode())

    def _http_digest_ok(self, request: web.Request) -> bool:
        header = request.headers.get("Authorization", "")
        if not header.startswith("Digest "):
            return False
        fields: dict[str, str] = {}
        for part in _split_header(header[len("Digest "):]):
            key, _, value = part.partition("=")
            fields[key.strip().lower()] = value.strip().strip('"')
        nonce = fields.get("nonce", "")
        if nonce not in self._http_nonces or fields.get("username") != self.username:
            return False

        def md5(text: str) -> str:
            return hashlib.md5(text.encode(), usedforsecurity=False).hexdigest()

        ha1 = md5(f"{self.username}:{self._realm}:{self.password}")
        ha2 = md5(f"{request.method}:{fields.get('uri', '')}")
        if fields.get("qop") == "auth":
            expected = md5(f"{ha1}:{nonce}:{fields.get('nc', '')}:{fields.get('cnonce', '')}:auth:{ha2}")
        else:
            expected = md5(f"{ha1}:{nonce}:{ha2}")
        return hmac.compare_digest(expected, fields.get("response", ""))


class _SoapFault(Exception):
    """An operation's own fault (a bad argument), answered with HTTP 400."""

    def __init__(self, code: str, subcode: str, reason: str) -> None:
        super().__init__(reason)
        self.code, self.subcode, self.reason = code, subcode, reason


class _HostileReply(Exception):
    """Carries a raw (malicious) reply past the envelope wrapper."""

    def __init__(self, text: str) -> None:
        super().__init__("hostile reply")
        self.text = text


def _split_header(value: str) -> list[str]:
    """Split a digest header on commas outside quotes."""
    parts: list[str] = []
    current: list[str] = []
    quoted = False
    for ch in value:
        if ch == '"':
            quoted = not quoted
        if ch == "," and not quoted:
            parts.append("".join(current))
            current = []
        else:
            current.append(ch)
    if current:
        parts.append("".join(current))
    return parts
