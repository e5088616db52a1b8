"""Backing off while DynamoDB throttles: exponential waits with full jitter, a bounded number of attempts.

The clients also retry (botocore's standard mode, 3 attempts); this outer loop rides out longer throttling,
such as an on-demand table doubling its capacity under an import, without giving up the run.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import TypeVar

from botocore.exceptions import ClientError

from functions.store import is_throttling

MAX_ATTEMPTS = 10
"""Attempts per request while DynamoDB throttles (the waits then reach ``BACKOFF_CAP`` seconds)."""
BACKOFF_BASE = 0.05
BACKOFF_CAP = 10.0

Sleep = Callable[[float], None]
T = TypeVar("T")


def pause(seconds: float) -> None:
    """The backoff's wait (tests replace it to keep the retries without the waiting)."""
    time.sleep(seconds)


def delay(attempt: int) -> float:
    """How long to wait before attempt ``attempt + 1`` (full jitter)."""
    return random.uniform(0, min(BACKOFF_CAP, BACKOFF_BASE * 2**attempt))


def with_backoff(call: Callable[[], T], sleep: Sleep | None = None) -> T:
    """``call()``, retried with exponential backoff and full jitter while DynamoDB throttles."""
    for attempt in range(MAX_ATTEMPTS):
        try:
            return call()
        except ClientError as error:
            if not is_throttling(error) or attempt == MAX_ATTEMPTS - 1:
                raise
        (sleep or pause)(delay(attempt))
    raise AssertionError("unreachable")

