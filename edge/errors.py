"""One tree of errors for the whole gateway, so callers catch by meaning, not by library.

    EdgeError
    ├── ConfigError            bad estate config or secrets (names the YAML path and line)
    │   └── SecretsPermissionError   secrets file readable by others than its owner
    ├── DeviceError            a device read failed (always carries ``device_id``)
    │   ├── DeviceTimeout          no answer within the device's timeout
    │   ├── DeviceUnreachable      connection refused / port not there / bus not open
    │   ├── DeviceProtocolError    corrupt frame, bad CRC, wrong length
    │   └── DeviceExceptionCode    the device answered with a protocol exception (e.g. Modbus 0x02)
    ├── StoreError             the local store cannot accept or serve records
    │   └── StoreFull              quota reached and nothing evictable is left
    └── UplinkError            the central platform did not take a batch
        ├── UplinkRejected         4xx validation: the records are wrong, retrying will not help
        └── UplinkUnavailable      network, 5xx, 429, breaker open: retry later
            └── UplinkProtocolError    2xx whose body does not account for the batch: resend, same key

Each library's own exceptions are mapped onto this tree at one seam (the driver's transport,
the store, the uplink client) with ``raise ... from`` so the cause stays visible.
"""

from __future__ import annotations


class EdgeError(Exception):
    """Base of every error the gateway raises on purpose."""


class ConfigError(EdgeError):
    """The estate configuration or the secrets are invalid.

    ``problems`` holds one human-readable line per problem, each naming its place
    (``file:line: path.to.field: message``), so ``estate-edge check`` can list them all.
    """

    def __init__(self, message: str, problems: list[str] | None = None) -> None:
        super().__init__(message)
        self.problems: list[str] = problems or [message]


class SecretsPermissionError(ConfigError):
    """The secrets file can be read by group or others; we refuse to use it."""


class DeviceError(EdgeError):
    """A device could not be read. ``device_id`` names it; ``detail`` says where (register, point)."""

    def __init__(self, device_id: str, message: str, *, detail: str | None = None) -> None:
        where = f" ({detail})" if detail else ""
        super().__init__(f"device {device_id}{where}: {message}")
        self.device_id = device_id
        self.detail = detail


class DeviceTimeout(DeviceError):
    """No answer within the configured timeout."""


class DeviceUnreachable(DeviceError):
    """The transport could not reach the device at all."""


class DeviceProtocolError(DeviceError):
    """The device answered with a frame we could not decode (CRC, length, framing)."""


class DeviceExceptionCode(DeviceError):
    """The device answered with a protocol exception code (kept in ``code``)."""

    def __init__(self, device_id: str, code: int, *, detail: str | None = None) -> None:
        super().__init__(device_id, f"exception code {code:#04x}", detail=detail)
        self.code = code


class StoreError(EdgeError):
    """The local store failed to accept or serve records."""


class StoreFull(StoreError):
    """The disk quota is reached and no lower-priority record is left to evict."""


class UplinkError(EdgeError):
    """The central platform did not take a batch."""

    def __init__(self, message: str, *, code: str | None = None, suggestion: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.suggestion = suggestion


class UplinkRejected(UplinkError):
    """The platform rejected records as invalid (4xx); retrying the same records will not help.

    ``record_errors`` maps record id -> the platform's message for that record.
    """

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        suggestion: str | None = None,
        record_errors: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message, code=code, suggestion=suggestion)
        self.record_errors: dict[str, str] = record_errors or {}


class UplinkUnavailable(UplinkError):
    """The platform is unreachable or asked us to wait; ``retry_after`` is in seconds when it said so."""

    def __init__(self, message: str, *, code: str | None = None, retry_after: float | None = None) -> None:
        super().__init__(message, code=code)
        self.retry_after = retry_after


class UplinkProtocolError(UplinkUnavailable):
    """The platform answered 2xx but its answer does not account for the batch we sent.

    A captive portal's HTML page, a proxy's empty 200, a truncated JSON body or a count that does
    not add up: none of them proves the records arrived, so the batch is *not* acknowledged. It is
    resent under the same ``Idempotency-Key`` (the platform deduplicates it if it did arrive), and
    it feeds the breaker and backoff like any other unavailability. ``excerpt`` is the start of the
    reply, for the log.
    """

    def __init__(self, message: str, *, excerpt: str = "") -> None:
        super().__init__(message, code="BAD_ACK")
        self.excerpt = excerpt

