"""The attempts of one logical call: signing, deadline and retry bookkeeping, without IO.

Both clients drive the same object and only move bytes and sleep. The unary loop is::

    attempts = Attempts(exchange, call, timeout=timeout, random=random)
    while True:
        request, remaining = attempts.start()
        try:
            answer = send(request, remaining)          # the transport
        except grpc.RpcError as exc:
            sleep(attempts.failed(raw_status(exc), exc))  # raises when there is no retry
            continue
        return attempts.open(answer, ResultType)
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TypeVar

from google.protobuf.message import Message

from sseaun.v1.envelope_pb2 import Envelope

from ._errors import TransportError
from ._exchange import Exchange, FeedChain, LogicalCall, RawStatus
from ._receipt import Receipt
from ._retry import Deadline, retry_delay

__all__ = ["Attempts"]

_log = logging.getLogger("sseaun.sdk.client")
_M = TypeVar("_M", bound=Message)


class Attempts:
    """Attempts of one logical call within its deadline.

    Every attempt is signed afresh (same request ID, new nonce and issue time). The deadline
    covers all attempts and the waits between them.

    Args:
        timeout: seconds for the whole call; None for the config's default deadline.
        random: a uniform draw from [0, 1) for the jitter.
    """

    def __init__(
        self,
        exchange: Exchange,
        call: LogicalCall,
        *,
        timeout: float | None,
        random: Callable[[], float],
    ) -> None:
        self._exchange = exchange
        self._call = call
        self._random = random
        self._deadline = Deadline.after(
            timeout if timeout is not None else exchange.config.deadline
        )
        self._request: Envelope | None = None
        self._chain: FeedChain | None = None
        self.made = 0

    @property
    def call(self) -> LogicalCall:
        return self._call

    @property
    def request(self) -> Envelope:
        """The signed request of the current attempt."""
        if self._request is None:
            raise RuntimeError("no attempt started")
        return self._request

    def start(self) -> tuple[Envelope, float]:
        """Sign the next attempt; return it with the seconds left for it."""
        self._request = self._exchange.sign(self._call)
        self._chain = None
        self.made += 1
        return self._request, self._deadline.remaining()

    def start_feed(self, *, follow: bool) -> tuple[Envelope, float, FeedChain]:
        """As start, with the verifier of this attempt's feed pages."""
        request, remaining = self.start()
        self._chain = self._exchange.feed(self._call, request, follow=follow)
        return request, remaining, self._chain

    def open(self, answer: Envelope, result_type: type[_M], receipt: Receipt | None = None) -> _M:
        """The verified result of the current attempt (see Exchange.open_response)."""
        return self._exchange.open_response(self._call, self.request, answer, result_type, receipt)

    def failed(self, status: RawStatus, cause: BaseException | None = None) -> float:
        """The current attempt failed with status: seconds to wait before the next one.

        Raises:
            ClientError: the failure (NodeError, TransportError) when it is not retried: not
                retryable, attempts used up, or the wait would not end before the deadline.
        """
        error = self._exchange.failure(self._call, self.request, status)
        delay = retry_delay(
            self._exchange.config.retry,
            attempts_made=self.made,
            error=error,
            remaining=self._deadline.remaining(),
            random=self._random,
        )
        if delay is None:
            raise error from cause
        _log.debug(
            "retrying %s (request %s) in %.3f s after %s",
            self._call.method,
            self._call.request_id,
            delay,
            error.code,
        )
        return delay

    def feed_failed(self, status: RawStatus, cause: BaseException | None = None) -> float | None:
        """The current feed attempt failed: seconds to wait, or None when the feed simply ended.

        A following feed that reaches its deadline after at least one page ends quietly. Once a
        page was delivered the call is never retried (the caller resumes from its cursor).

        Raises:
            ClientError: the failure, when the feed neither ended nor is retried.
        """
        chain = self._chain
        if chain is None or chain.pages == 0:
            return self.failed(status, cause)
        error = self._exchange.failure(self._call, self.request, status)
        if chain.follow and isinstance(error, TransportError) and error.code == "DEADLINE_EXCEEDED":
            return None
        raise error from cause
