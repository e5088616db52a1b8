"""``python -m localsite``: run the whole site on this machine (no AWS account, no Docker).

    python -m localsite [--port 8000] [--stack dev] [--fresh] [--state-dir .local-site]

Settings (stage name, timeouts, the stream mapping's batch size, window, retries...) come from
``Pulumi.<stack>.yaml``, as a ``pulumi up`` of that stack would use them. Counts are kept in the state
directory and survive a restart; ``--fresh`` starts from zero. Ctrl-C (or SIGTERM) stops cleanly.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from types import FrameType

import yaml

from definition import ROOT, stack_settings


class _LogFormatter(logging.Formatter):
    """The site's own lines as plain text; the functions' lines as the JSON Lambda would log."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(message)s", datefmt="%H:%M:%S")
        from functions.log import JsonFormatter

        self._json = JsonFormatter()

    def format(self, record: logging.LogRecord) -> str:
        if record.name.startswith("functions"):
            return f"{self.formatTime(record, self.datefmt)} {record.name.split('.')[-1]}: {self._json.format(record)}"
        return super().format(record)


def _port(text: str) -> int:
    port = int(text)
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError("a port is between 0 and 65535")
    return port


def _arguments(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m localsite", description="Run tag-counter locally, on moto.")
    parser.add_argument("--port", type=_port, default=8000, help="port on 127.0.0.1 (default 8000; 0 picks a free one)")
    parser.add_argument("--stack", default="dev", help="read settings from Pulumi.<stack>.yaml (default dev)")
    parser.add_argument("--fresh", action="store_true", help="forget the saved counts and start from zero")
    parser.add_argument(
        "--state-dir",
        default=ROOT / ".local-site",
        type=Path,
        help="where counts are kept (default: .local-site in the project folder)",
    )
    parser.add_argument("--quiet", action="store_true", help="log only warnings and errors")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the local site until Ctrl-C or SIGTERM; return the process exit code."""
    args = _arguments(argv)
    output = logging.StreamHandler()
    output.setFormatter(_LogFormatter())
    logging.basicConfig(level=logging.WARNING if args.quiet else logging.INFO, handlers=[output])
    # botocore's own INFO lines (credential lookups and the like) are noise here.
    logging.getLogger("botocore").setLevel(logging.WARNING)
    stop = threading.Event()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        stop.set()

    # Handled from the start, so a Ctrl-C during start-up also stops cleanly.
    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)

    try:
        settings = stack_settings(args.stack)
    except FileNotFoundError:
        print(f"localsite: no stack file {ROOT / f'Pulumi.{args.stack}.yaml'}", file=sys.stderr)
        return 2
    except (ValueError, yaml.YAMLError) as error:
        print(f"localsite: Pulumi.{args.stack}.yaml: {error}", file=sys.stderr)
        return 2

    from localsite.site import LocalSite, PortInUse  # boto3 and moto: a second or two to import

    site = LocalSite(settings, port=args.port, state_dir=args.state_dir, fresh=args.fresh)
    try:
        site.start()
    except PortInUse:
        print(
            f"localsite: port {args.port} on 127.0.0.1 is already in use (is the site already running?); "
            f"choose another with --port",
            file=sys.stderr,
        )
        return 1
    except OSError as error:
        print(f"localsite: cannot listen on 127.0.0.1:{args.port}: {error.strerror or error}", file=sys.stderr)
        return 1
    state_file = site.store.path if site.store is not None else None
    restored = f"{site.restored} tag{'s' if site.restored != 1 else ''} restored" if site.restored else "starting from zero"
    print(f"tag-counter is running at {site.url}  (stack {args.stack}, Ctrl-C to stop)", flush=True)
    print(f"counts are kept in {state_file} ({restored}; --fresh starts over)", flush=True)
    try:
        while not stop.wait(0.5):
            pass
    finally:
        site.stop()
    print(f"stopped; counts saved in {state_file}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
