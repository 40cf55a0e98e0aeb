"""The retry schedule and the overall deadline of a call: pure decisions, no sleeping.

Only reads are retried (every method of this client is a read), and only when trying again can
help:

- UNAVAILABLE, signed or not: the call did not get through (gRPC's litmus test: "the client can
  retry just this call").
- RESOURCE_EXHAUSTED when the node rate-limits: a signed RATE_LIMITED error, or any status that
  carries a ``RetryInfo``. A bare unsigned RESOURCE_EXHAUSTED is usually gRPC refusing a message
  above the size limit, which a retry cannot fix.

Never retried: ABORTED (a read has nothing to re-read-modify-write), DEADLINE_EXCEEDED (the
deadline is the whole call's), answers that failed verification (someone tampers: retrying
hides it), and every other signed error.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from sseaun.sdk.core import Reason

from ._config import RetryPolicy
from ._errors import ClientError, NodeError, TransportError

__all__ = ["Deadline", "backoff", "is_retryable", "retry_delay"]


def is_retryable(error: ClientError) -> bool:
    """Whether another attempt of the same read could succeed."""
    if error.code == "UNAVAILABLE":
        return isinstance(error, NodeError | TransportError)
    if error.code == "RESOURCE_EXHAUSTED":
        if isinstance(error, NodeError):
            return error.reason is Reason.RATE_LIMITED
        if isinstance(error, TransportError):
            return error.retry_after is not None
    return False


def backoff(policy: RetryPolicy, retry_number: int, random: Callable[[], float]) -> float:
    """The full-jitter wait before retry number retry_number (1 for the first retry)."""
    cap = min(policy.max_backoff, policy.base_backoff * 2.0 ** (retry_number - 1))
    return random() * cap


def retry_delay(
    policy: RetryPolicy,
    *,
    attempts_made: int,
    error: ClientError,
    remaining: float,
    random: Callable[[], float],
) -> float | None:
    """Seconds to wait before the next attempt, or None to give up and raise error.

    Args:
        attempts_made: attempts so far, the failed one included.
        remaining: seconds left before the call's deadline.
        random: a uniform draw from [0, 1).
    """
    if attempts_made >= policy.max_attempts or not is_retryable(error):
        return None
    asked = getattr(error, "retry_after", None)
    delay = asked.total_seconds() if asked is not None else backoff(policy, attempts_made, random)
    delay = max(delay, 0.0)
    # The next attempt needs time too: a wait that eats the whole deadline is pointless.
    if delay >= remaining:
        return None
    return delay


@dataclass
class Deadline:
    """The absolute deadline of one logical call, on the monotonic clock."""

    expires: float

    @classmethod
    def after(cls, seconds: float) -> Deadline:
        return cls(time.monotonic() + seconds)

    def remaining(self) -> float:
        """Seconds left (never negative)."""
        return max(0.0, self.expires - time.monotonic())
