"""Upload to the central rating platform (seed 000 clause 7.2); see ``edge.uplink.uplink``."""

from edge.uplink.breaker import BreakerState, CircuitBreaker
from edge.uplink.client import Ack, PlatformClient, idempotency_key
from edge.uplink.uplink import Uplink, UplinkSettings

__all__ = ["Ack", "BreakerState", "CircuitBreaker", "PlatformClient", "Uplink", "UplinkSettings", "idempotency_key"]
