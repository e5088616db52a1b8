"""``./dev site``: run the whole site on this machine (no AWS account, no Docker).

    ./dev site [--host 127.0.0.1] [--port 8000] [--stack dev] [--fresh] [--state-dir .local-site] [--quiet]

Settings (stage name, timeouts, the stream mapping's batch size, window, retries...) come from
``Pulumi.<stack>.yaml``, as a ``pulumi up`` of that stack would use them. Counts are kept in the state
folder and survive a restart, and a kill; ``--fresh`` starts from zero. Ctrl-C (or SIGTERM) stops cleanly.
The URL goes to stdout; the log (one line per request and per stream batch, and one when it stops) to stderr.
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

PROG = "./dev site"


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


def port_number(text: str) -> int:
    """``--port``'s value: a whole number from 0 to 65535."""
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number (a whole number from 0 to 65535)") from None
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{port} is not a port number (a whole number from 0 to 65535)")
    return port


def _arguments(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Run tag-counter on this machine, on moto: no AWS account, no Docker.",
        epilog="The URL is printed on stdout, the log on stderr. Edits of Pulumi.<stack>.yaml need a restart.",
    )
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to listen on (default 127.0.0.1, this machine only; 0.0.0.0 in a container or VM)")
    parser.add_argument("--port", type=port_number, default=8000, metavar="PORT",
                        help="port to listen on (default 8000; 0 picks a free one)")
    parser.add_argument("--stack", default="dev", help="read settings from Pulumi.<stack>.yaml (default dev)")
    parser.add_argument("--fresh", action="store_true", help="forget the saved counts and start from zero")
    parser.add_argument(
        "--state-dir",
        default=ROOT / ".local-site",
        type=Path,
        metavar="DIR",
        help="where counts are kept (default: .local-site in the project folder); one site per folder",
    )
    parser.add_argument("--quiet", action="store_true", help="log only warnings and errors")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the local site until Ctrl-C or SIGTERM; return the process exit code."""
    args = _arguments(argv)
    output = logging.StreamHandler()
    output.setFormatter(_LogFormatter())
    # The level is the handler's: the functions' loggers set INFO themselves (as they must in Lambda).
    output.setLevel(logging.WARNING if args.quiet else logging.INFO)
    logging.basicConfig(level=logging.INFO, handlers=[output])
    # botocore's own INFO lines (credential lookups and the like) are noise here.
    logging.getLogger("botocore").setLevel(logging.WARNING)
    stop = threading.Event()
    stopped_by: list[str] = []

    def request_stop(signum: int, frame: FrameType | None) -> None:
        stopped_by.append(signal.Signals(signum).name)
        stop.set()

    # Handled from the start, so a Ctrl-C during start-up also stops cleanly.
    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)

    try:
        settings = stack_settings(args.stack)
    except FileNotFoundError:
        print(f"{PROG}: no stack file {ROOT / f'Pulumi.{args.stack}.yaml'}", file=sys.stderr)
        return 2
    except (ValueError, yaml.YAMLError) as error:
        print(f"{PROG}: Pulumi.{args.stack}.yaml: {error}", file=sys.stderr)
        return 2

    from localsite.site import LocalSite, PortInUse, is_loopback  # boto3 and moto: a second or two to import
    from localsite.state import StateError

    log = logging.getLogger("localsite")
    site = LocalSite(settings, host=args.host, port=args.port, state_dir=args.state_dir, fresh=args.fresh)
    try:
        site.start()
    except StateError as error:
        print(f"{PROG}: {error}", file=sys.stderr)
        return 1
    except PortInUse:
        print(
            f"{PROG}: port {args.port} on {args.host} is already in use (is the site already running?); "
            f"choose another with --port",
            file=sys.stderr,
        )
        return 1
    except OSError as error:
        print(f"{PROG}: cannot listen on {args.host}:{args.port}: {error.strerror or error}", file=sys.stderr)
        return 1
    if not is_loopback(args.host):
        # Said once the port is bound: with --port 0 only the bound port tells where the site can be reached.
        log.warning("listening on %s: anyone who can reach this machine on port %s can see and add visits",
                    args.host, site.port)
    state_file = site.store.path if site.store is not None else None
    if args.fresh:
        restored = "starting from zero, as --fresh asked"
    elif site.restored:
        restored = f"{site.restored} tag{'s' if site.restored != 1 else ''} restored; --fresh starts over"
    else:
        restored = "starting from zero"
    print(f"tag-counter is running at {site.url}  (stack {args.stack}, Ctrl-C to stop)", flush=True)
    print(f"counts are kept in {state_file} ({restored})", flush=True)
    try:
        while not stop.wait(0.5):
            pass
    finally:
        site.stop()
    # One line in the log, whatever stopped it (Ctrl-C is SIGINT): a supervisor sending SIGTERM sees it too.
    how = f" on {stopped_by[0]}" if stopped_by else ""
    unsaved = site.persister.unsaved if site.persister is not None else 0
    if unsaved:
        log.error("stopped%s; %d tag records could not be saved in %s", how, unsaved, state_file)
        return 1
    log.info("stopped%s; counts saved in %s", how, state_file)
    return 0


if __name__ == "__main__":
    sys.exit(main())
