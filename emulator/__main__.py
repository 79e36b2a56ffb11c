"""`python -m emulator --port P --data-dir D [--host H] [--plain-http]`."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from emulator.server import serve


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m emulator", description="The local Gmail / Google OAuth emulator."
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8025)
    parser.add_argument("--data-dir", type=Path, default=Path(".data"))
    parser.add_argument(
        "--plain-http", action="store_true", help="serve HTTP instead of HTTPS (no CA file)"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    serve(args.host, args.port, args.data_dir, tls=not args.plain_http)


if __name__ == "__main__":
    main()
