"""The operator command: ``./dev admin <subcommand> (--stack NAME | --table NAME | --local) [options]``.

Subcommands: ``set TAG N``, ``reset TAG``, ``delete TAG``, ``import FILE|-``, ``export``, ``reconcile``.
Data goes to standard output (``export``) and what the command did to standard error, except the one-line
results of the other subcommands, which go to standard output. Exit codes: see ``EXIT_CODES``.
"""

from __future__ import annotations

import argparse
import io
import os
import sys
import tempfile
import traceback
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

from botocore.exceptions import BotoCoreError, ClientError

from admin import changes as changing
from admin.changes import Change, PartlyApplied
from admin.progress import Progress
from admin.records import COUNT_RULE, FORMATS, BadInput, TagRecord, csv_lines, json_lines, parse_count, read_records
from admin.reconcile import (
    DEFAULT_ATTEMPTS,
    DEFAULT_SETTLE_SECONDS,
    MAX_ATTEMPTS,
    MAX_SETTLE_SECONDS,
    MIN_SETTLE_SECONDS,
    ReconcileResult,
    TotalChanged,
    reconcile,
)
from admin.scan import DEFAULT_SEGMENTS, MAX_SEGMENTS, scan_tag_items
from admin.table import UnrecognisedTable, check_table
from admin.wording import counted, number
from admin.target import DEFAULT_STATE_DIR, NoTarget, Target, resolve
from functions.history import MAX_HISTORY_DAYS
from functions.tags import InvalidTag, normalize_tag

OK = 0
NOT_STEADY = 1
BAD_INPUT = 2
REFUSED = 3
AWS_ERROR = 4
NOT_CONFIRMED = 5
BUG = 6
INTERRUPTED = 130

EXIT_CODES = f"""exit codes:
  {OK}    done (or nothing to change)
  {NOT_STEADY}    reconcile: visits kept arriving or the stream was still being applied; nothing written, run it again
  {BAD_INPUT}    bad arguments or bad input (an invalid tag, a malformed file); nothing written
  {REFUSED}    refused: not tag-counter's table, no such table or stack output, no local site running; nothing written
  {AWS_ERROR}    AWS error (credentials, permissions, network, throttling that outlasted the retries); an import
       may be partly written: run it again, it writes only what is still different
  {NOT_CONFIRMED}    not confirmed: counts would be lowered and nobody said yes (--yes skips the question); nothing written
  {BUG}    unexpected error (a bug: the traceback is on standard error); an import may be partly written
  {INTERRUPTED}  interrupted (Ctrl-C); an import may be partly written: run it again"""

EXIT_CODES_POINTER = "exit codes: the same for every subcommand, listed by ./dev admin --help"

Ask = Callable[[str], "bool | None"]
MAX_LISTED = 20
"""Tags listed by name in one refusal; the rest are counted."""


class Failure(Exception):
    """Stop with a message and an exit code."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _bounded(name: str, low: float, high: float, kind: type = int) -> Callable[[str], Any]:
    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{name} must be a number from {number(low)} to {number(high)}") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"{name} must be from {number(low)} to {number(high)}, got {text}")
        return value

    return parse


def _count(text: str) -> int:
    """``set``'s N, read by the import's own rule (``records.parse_count``): what one accepts, so does the other."""
    try:
        return parse_count(text)
    except ValueError:
        shown = repr(text) if len(text) <= 40 else repr(text[:37]) + "..."  # not 5,000 digits back at the owner
        raise argparse.ArgumentTypeError(f"N must be {COUNT_RULE}, got {shown}") from None


def _target_options() -> argparse.ArgumentParser:
    # Accepted before or after the subcommand; SUPPRESS keeps a subparser from resetting what the main one read.
    common = argparse.ArgumentParser(add_help=False)
    where = common.add_argument_group("where to act (exactly one)")
    where.add_argument("--stack", default=argparse.SUPPRESS, help="a deployed stack: its table_name output")
    where.add_argument("--table", default=argparse.SUPPRESS, help="a table, reached with the usual AWS environment")
    where.add_argument("--local", action="store_true", default=argparse.SUPPRESS, help="the running local site")
    where.add_argument(
        "--state-dir", default=argparse.SUPPRESS, help=f"the local site's state folder (default {DEFAULT_STATE_DIR})"
    )
    where.add_argument("--region", default=argparse.SUPPRESS, help="AWS region (default: the environment's)")
    where.add_argument("--endpoint-url", default=argparse.SUPPRESS, help="DynamoDB endpoint of an emulator")
    return common


def parser() -> argparse.ArgumentParser:
    """The command line."""
    common = _target_options()
    main_parser = argparse.ArgumentParser(
        prog="./dev admin",
        description="Manage tag-counter's counts: on a deployed stack, a table, or the local site. Every change is "
        "a normal write to a tag item, so the stream processor keeps the site-wide total exact.",
        epilog=EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        parents=[common],
    )
    sub = main_parser.add_subparsers(dest="command", required=True, metavar="SUBCOMMAND")
    confirm = argparse.ArgumentParser(add_help=False)
    confirm.add_argument("--dry-run", action="store_true", help="say what would change, change nothing")
    confirm.add_argument("--yes", action="store_true", help="do not ask before lowering or deleting counts")

    def add(name: str, help_text: str, *parents: argparse.ArgumentParser) -> argparse.ArgumentParser:
        # The exit codes are the same for every subcommand: listed once, in the top-level help.
        return sub.add_parser(
            name, help=help_text, description=help_text, parents=[common, *parents], epilog=EXIT_CODES_POINTER,
        )

    workers = _bounded("--workers", 1, changing.MAX_WORKERS)
    segments = _bounded("--segments", 1, MAX_SEGMENTS)

    command = add("set", "set a tag's count to N (its daily history stays)", confirm)
    command.add_argument("tag", metavar="TAG")
    command.add_argument("visits", metavar="N", type=_count)
    command = add("reset", "set a tag's count to 0 and clear its daily history", confirm)
    command.add_argument("tag", metavar="TAG")
    command = add("delete", "delete a tag (its count and history)", confirm)
    command.add_argument("tag", metavar="TAG")

    command = add(
        "import",
        "set counts from a CSV (tag,visits) or JSON Lines file as export writes it; '-' reads standard input",
        confirm,
    )
    command.add_argument("file", metavar="FILE")
    command.add_argument("--format", choices=("auto", *FORMATS), default="auto", help="default: from the first line")
    command.add_argument(
        "--workers", type=workers, default=changing.DEFAULT_WORKERS,
        help=f"parallel writes (1-{changing.MAX_WORKERS}, default {changing.DEFAULT_WORKERS})",
    )

    command = add("export", "write every tag with its count and daily history (CSV or JSON Lines)")
    command.add_argument("--format", choices=FORMATS, help="default: json for an --output ending .json/.jsonl, else csv")
    command.add_argument("--output", "-o", metavar="FILE", help="write to FILE (complete or not at all); default stdout")
    command.add_argument("--sort", action="store_true", help="sort by tag (holds every row in memory)")
    command.add_argument(
        "--segments", type=segments, default=DEFAULT_SEGMENTS,
        help=f"parallel scan segments (1-{MAX_SEGMENTS}, default {DEFAULT_SEGMENTS})",
    )

    command = add("reconcile", "recompute the site-wide total and daily totals from the tags (run it when quiet)")
    command.add_argument("--dry-run", action="store_true", help="count and report, change nothing")
    command.add_argument(
        "--segments", type=segments, default=DEFAULT_SEGMENTS,
        help=f"parallel scan segments (1-{MAX_SEGMENTS}, default {DEFAULT_SEGMENTS})",
    )
    command.add_argument(
        "--settle", type=_bounded("--settle", MIN_SETTLE_SECONDS, MAX_SETTLE_SECONDS, float),
        default=DEFAULT_SETTLE_SECONDS,
        help=f"seconds the total and the tags must stay unchanged ({number(MIN_SETTLE_SECONDS)}-"
        f"{number(MAX_SETTLE_SECONDS)}, default {number(DEFAULT_SETTLE_SECONDS)}; keep it above the stack's "
        f"streamBatchingWindowSeconds; at least {number(MIN_SETTLE_SECONDS)} s because Lambda polls a stream's "
        "shard about four times a second, so a shorter period can end before a visit made just before the "
        "reading is applied, and the total would count it twice)",
    )
    command.add_argument(
        "--attempts", type=_bounded("--attempts", 1, MAX_ATTEMPTS), default=DEFAULT_ATTEMPTS,
        help=f"readings to try before giving up (1-{MAX_ATTEMPTS}, default {DEFAULT_ATTEMPTS})",
    )
    command.add_argument(
        "--history-days", type=_bounded("--history-days", 1, MAX_HISTORY_DAYS),
        help="days of daily totals to recompute (default: the stack's historyDays, else 30)",
    )
    return main_parser


def _where(args: argparse.Namespace) -> dict[str, Any]:
    given = [name for name in ("stack", "table", "local") if getattr(args, name, None)]
    if len(given) != 1:
        raise Failure(BAD_INPUT, "say where to act with exactly one of --stack NAME, --table NAME or --local")
    if hasattr(args, "state_dir") and given != ["local"]:
        raise Failure(BAD_INPUT, "--state-dir goes with --local")
    if given == ["local"] and (hasattr(args, "endpoint_url") or hasattr(args, "region")):
        raise Failure(BAD_INPUT, "--local reads its endpoint and region from the site's state folder")
    return {
        "stack": getattr(args, "stack", None),
        "table": getattr(args, "table", None),
        "local": bool(getattr(args, "local", False)),
        "state_dir": getattr(args, "state_dir", None),
        "region": getattr(args, "region", None),
        "endpoint_url": getattr(args, "endpoint_url", None),
        "workers": getattr(args, "workers", changing.DEFAULT_WORKERS),
    }


def _tag(raw: str) -> str:
    try:
        return normalize_tag(raw)
    except InvalidTag as error:
        raise Failure(BAD_INPUT, f"tag {raw!r} is invalid: {error.problem} {error.reason} Nothing was written.") from None


def default_ask(question: str) -> bool | None:
    """Ask on the terminal (``/dev/tty``, so that an import from standard input can still ask); None: no terminal.

    The terminal is opened twice, once to write and once to read: a text file opened "r+" must be seekable,
    which a terminal is not, so that open fails on every real terminal.
    """
    try:
        with open("/dev/tty", "w", encoding="utf-8") as out, open("/dev/tty", encoding="utf-8") as answer:
            out.write(f"{question} [y/N] ")
            out.flush()
            return answer.readline().strip().lower() in ("y", "yes")
    except OSError:
        return None


def _confirm(args: argparse.Namespace, lowering: Sequence[Change], ask: Ask, target: Target) -> None:
    if not lowering or args.yes:
        return
    shown = "\n".join(f"  {change.describe()}" for change in lowering[:10])
    more = f"\n  ... and {len(lowering) - 10} more" if len(lowering) > 10 else ""
    print(f"These changes lower counts on {target.where}:\n{shown}{more}", file=sys.stderr)
    answer = ask(f"Lower or delete {counted(len(lowering), 'count')}?")
    if answer is None:
        raise Failure(NOT_CONFIRMED, "counts would be lowered and there is no terminal to ask: run again with --yes. "
                      "Nothing was written.")
    if not answer:
        raise Failure(NOT_CONFIRMED, "not confirmed. Nothing was written.")


def _refuse_history_above_count(planned: Sequence[Change]) -> None:
    """A count set below the visits its kept daily history holds is refused, before anything is written."""
    above = [(change, kept) for change in planned if (kept := change.history_above_count) is not None]
    if not above:
        return
    shown = "\n".join(
        f"  {change.tag}: {change.visits_after:,} is below the {kept:,} visits of its daily history; set at least "
        f"{kept:,}, or reset the tag first (that clears its history)"
        for change, kept in above[:MAX_LISTED]
    )
    more = f"\n  ... and {len(above) - MAX_LISTED:,} more" if len(above) > MAX_LISTED else ""
    raise Failure(
        BAD_INPUT, f"a count cannot be lower than the visits its days hold:\n{shown}{more}\nNothing was written."
    )


def _change_counts(
    args: argparse.Namespace, target: Target, targets: list[tuple[str, TagRecord | None]], ask: Ask, label: str
) -> int:
    workers = getattr(args, "workers", changing.DEFAULT_WORKERS)
    planned = changing.plan(target.dynamodb, target.table_name, targets, workers=workers)
    _refuse_history_above_count(planned)
    unchanged = len(targets) - len(planned)
    if args.dry_run:
        for change in planned:
            print(f"would change {change.describe()}")
        print(f"dry run on {target.where}: {len(planned)} to change, {unchanged} unchanged; nothing was written")
        return OK
    if not planned:
        print(f"{target.where}: nothing to change ({unchanged} already as asked)")
        return OK
    _confirm(args, [change for change in planned if change.lowers], ask, target)
    progress = Progress(len(planned), label) if label == "import" else None
    try:
        written = changing.apply(target.dynamodb, target.table_name, planned, workers=workers, progress=progress)
    except PartlyApplied as partial:
        code = INTERRUPTED if isinstance(partial.cause, KeyboardInterrupt) else (
            AWS_ERROR if isinstance(partial.cause, (BotoCoreError, ClientError)) else BUG
        )
        if code == BUG:
            traceback.print_exception(partial.cause, file=sys.stderr)
        cause = "interrupted" if code == INTERRUPTED else (str(partial.cause) or type(partial.cause).__name__)
        raise Failure(
            code,
            f"{partial.written} of {partial.total} changes written, then: {cause}. "
            "Run the same command again to finish: it writes only what is still different.",
        ) from None
    finally:
        if progress is not None:
            progress.close()
    if label != "import":
        print(f"{target.where}: {planned[0].describe()}")
    else:
        print(f"{target.where}: {counted(written, 'tag')} changed, {unchanged:,} already as asked")
    return OK


def _open_input(name: str) -> IO[bytes]:
    if name == "-":
        return sys.stdin.buffer
    try:
        return open(name, "rb")
    except OSError as error:
        raise Failure(BAD_INPUT, f"cannot read {name}: {error.strerror}") from None


def _import(args: argparse.Namespace, target_for: Callable[[], Target], ask: Ask) -> int:
    stream = _open_input(args.file)
    try:
        records = read_records(stream, args.format)
    except BadInput as bad:
        listed = "\n".join(f"  {problem}" for problem in bad.problems)
        more = f"\n  ... and {bad.more} more" if bad.more else ""
        shown = "standard input" if args.file == "-" else args.file
        raise Failure(BAD_INPUT, f"{shown} was not imported:\n{listed}{more}\nNothing was written.") from None
    finally:
        if stream is not sys.stdin.buffer:
            stream.close()
    target = target_for()
    return _change_counts(args, target, [(record.tag, record) for record in records], ask, "import")


@contextmanager
def _output(name: str | None) -> Iterator[IO[str]]:
    if name is None:
        yield sys.stdout
        sys.stdout.flush()
        return
    path = Path(name)
    try:
        handle = tempfile.NamedTemporaryFile(
            "w", encoding="utf-8", newline="", dir=path.parent, prefix=f".{path.name}.", suffix=".partial", delete=False
        )
    except OSError as error:
        raise Failure(BAD_INPUT, f"cannot write {name}: {error.strerror}") from None
    try:
        with handle:
            yield handle
        os.replace(handle.name, path)  # a backup is complete or absent, never cut short
    except BaseException:
        os.unlink(handle.name)
        raise


def _export(args: argparse.Namespace, target: Target) -> int:
    fmt = args.format or ("json" if (args.output or "").endswith((".json", ".jsonl")) else "csv")
    items = scan_tag_items(target.dynamodb, target.table_name, segments=args.segments)
    records: Any = (TagRecord.from_item(item) for item in items)
    if args.sort:
        records = sorted(records, key=lambda record: record.tag)
    count = 0

    def tallied() -> Iterator[TagRecord]:
        nonlocal count
        for record in records:
            count += 1
            yield record

    with _output(args.output) as out:
        for line in (json_lines if fmt == "json" else csv_lines)(tallied()):
            out.write(line)
    destination = f" to {args.output}" if args.output else ""
    print(f"exported {counted(count, 'tag')} from {target.where}{destination}", file=sys.stderr)
    return OK


def reconcile_outcome(result: ReconcileResult, dry_run: bool) -> str:
    """What reconcile changed, exactly: the total, the daily figures of some days, both, or nothing."""
    changes = []
    if result.total_differs:
        changes.append(f"the total ({result.previous_total:,} -> {result.counted_total:,})")
    days = result.days_differing
    if days:
        changes.append(f"the daily figures of {counted(len(days), 'day')}")
    if not changes:
        return "total and daily figures already right, nothing changed"
    what = " and ".join(changes)
    if dry_run:
        return f"dry run, nothing changed; would update {what}"
    kept = "" if result.total_differs else " (the total was already right)"
    return f"updated {what}{kept}"


def _reconcile(args: argparse.Namespace, target: Target) -> int:
    def waiting(seconds: float, attempt: int) -> None:
        tries = f" (reading {attempt} of {args.attempts})" if args.attempts > 1 else ""
        print(
            f"waiting {seconds:.1f} s{tries}: the total and the tags must stay unchanged that long, so that no visit is "
            "arriving and the stream processor has applied every earlier visit",
            file=sys.stderr,
            flush=True,
        )

    try:
        result = reconcile(
            target.dynamodb,
            target.table_name,
            streams=target.streams,
            segments=args.segments,
            dry_run=args.dry_run,
            settle=args.settle,
            attempts=args.attempts,
            history_days=args.history_days or target.history_days,
            waiting=waiting,
        )
    except TotalChanged as error:
        raise Failure(NOT_STEADY, f"not written: {error}; run it again in a quiet moment") from None
    in_window = sum(count for _, count in result.days)
    print(
        f"{target.where}: {counted(result.tags, 'tag')} hold {result.counted_total:,} visits ({in_window:,} in the "
        f"daily window); the total was {result.previous_total:,}: {reconcile_outcome(result, args.dry_run)}"
    )
    return OK


def run(argv: Sequence[str] | None = None, *, target: Target | None = None, ask: Ask = default_ask) -> int:
    """Parse ``argv`` and run the subcommand; return the exit code. ``target`` skips resolving (tests)."""
    args = parser().parse_args(argv)
    try:
        where = _where(args) if target is None else {}

        def target_for() -> Target:
            found = target if target is not None else resolve(**where)
            check_table(found.dynamodb, found.table_name)
            return found

        if args.command in ("set", "reset", "delete"):
            tag = _tag(args.tag)
            after = {
                "set": lambda: TagRecord(tag, args.visits),
                "reset": lambda: TagRecord(tag, 0, (), None),
                "delete": lambda: None,
            }[args.command]()
            return _change_counts(args, target_for(), [(tag, after)], ask, args.command)
        if args.command == "import":
            return _import(args, target_for, ask)
        if args.command == "export":
            return _export(args, target_for())
        return _reconcile(args, target_for())
    except Failure as failure:
        print(f"error: {failure.message}", file=sys.stderr)
        return failure.code
    except UnrecognisedTable as refused:
        print(f"refused: {refused.reason}; nothing was changed", file=sys.stderr)
        return REFUSED
    except NoTarget as missing:
        print(f"refused: {missing}; nothing was changed", file=sys.stderr)
        return REFUSED
    except (BotoCoreError, ClientError) as error:
        print(f"AWS error: {error}", file=sys.stderr)
        return AWS_ERROR
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return INTERRUPTED
    except BrokenPipeError:
        # e.g. `export | head`: the reader has what it wanted. Point stdout at /dev/null so that Python's
        # flush at exit does not complain about the closed pipe (the recipe of Python's signal docs).
        try:
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        except (OSError, ValueError, io.UnsupportedOperation):
            pass
        return OK
    except Exception:  # noqa: BLE001 - a bug must not look like "run again" (1) to a script
        traceback.print_exc()
        print(f"error: unexpected failure (exit {BUG}); please report it with the traceback above", file=sys.stderr)
        return BUG


def main() -> None:
    """``python -m admin``."""
    sys.exit(run())
