"""Run the platform simulator alone: ``python -m simulators.platform --port 8443``."""

from __future__ import annotations

import argparse
import logging
import os
from pathlib import Path

import uvicorn

from simulators.platform.app import ClientBinding, DropAfterBody, PlatformState, create_app
from simulators.platform.tls import make_tls_files


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m simulators.platform", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8443)
    parser.add_argument("--db", type=Path, default=Path("var/platform-sim.db"), help="SQLite file for accepted records")
    parser.add_argument("--tls-dir", type=Path, default=Path("var/platform-tls"),
                        help="where the self-signed CA (ca.pem) and server cert are kept")
    parser.add_argument("--no-tls", action="store_true", help="serve plain HTTP (never in production)")
    parser.add_argument("--client-id", default=os.environ.get("PLATFORM_SIM_CLIENT_ID", "gateway"))
    parser.add_argument("--client-secret", default=os.environ.get("PLATFORM_SIM_CLIENT_SECRET", "demo-secret"))
    parser.add_argument("--estate-id", help="estate the --client-id reports for (default: its first batch's)")
    parser.add_argument("--gateway-id", help="gateway the --client-id reports for (default: its first batch's)")
    parser.add_argument("--client", action="append", default=[], metavar="ID:SECRET:ESTATE:GATEWAY",
                        help="a further OAuth client bound to one estate and gateway (repeatable)")
    parser.add_argument("--token-ttl", type=float, default=3600.0, help="access token lifetime, seconds")
    args = parser.parse_args(argv)
    if (args.estate_id is None) != (args.gateway_id is None):
        parser.error("--estate-id and --gateway-id go together (or neither: bound by the first batch)")
    clients: dict[str, ClientBinding] = {}
    for spec in args.client:
        parts = spec.split(":")
        if len(parts) != 4 or not all(parts):
            parser.error(f"--client {spec!r}: expected ID:SECRET:ESTATE:GATEWAY")
        clients[parts[0]] = ClientBinding(parts[1], parts[2], parts[3])

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s platform-sim: %(message)s")
    state = PlatformState(args.db, args.client_id, args.client_secret, token_ttl_s=args.token_ttl,
                          estate_id=args.estate_id, gateway_id=args.gateway_id, clients=clients)
    state.open()
    app = DropAfterBody(create_app(state), state)
    ssl: dict[str, str] = {}
    scheme = "http"
    if not args.no_tls:
        tls = make_tls_files(args.tls_dir)
        ssl = {"ssl_certfile": str(tls.cert), "ssl_keyfile": str(tls.key)}
        scheme = "https"
        print(f"platform simulator CA bundle: {tls.ca_cert}", flush=True)
    print(f"platform simulator listening on {scheme}://{args.host}:{args.port} "
          f"(inspection: {scheme}://{args.host}:{args.port}/_sim)", flush=True)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning", access_log=False, **ssl)  # type: ignore[arg-type]


if __name__ == "__main__":
    main()
