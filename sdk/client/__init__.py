"""The node client: signed calls to a member's node, every answer verified (sync and async).

Example::

    from sseaun.sdk.client import AsyncNodeClient, ClientConfig, NodeError, TransportError
    from sseaun.v1.auth_pb2 import Purpose

    config = ClientConfig(network_id="sseaun", sender="ynu.edu.cn", signer=transport_key)
    async with AsyncNodeClient(config, keyring, "node.chula.ac.th:443", "chula.ac.th") as node:
        try:
            result = await node.get_record(
                "institutions/chula.ac.th/courses/2110101",
                purpose=Purpose.PURPOSE_MOBILITY_ADMINISTRATION,
            )
        except NodeError as exc:  # the node's own signed answer, e.g. NOT_FOUND
            ...
        except TransportError as exc:  # unsigned: network, proxy or deadline, never the node's word
            ...

``NodeClient`` is the blocking twin with the same methods. Both sign every attempt afresh (same
request ID, new nonce), verify each answer against the key ring and its binding to the request,
parse results from the verified bytes only, and retry reads on UNAVAILABLE and rate limiting
within the call's deadline.
"""

from ._async import AsyncNodeClient
from ._config import DEFAULT_MAX_MESSAGE_SIZE, ClientConfig, Keepalive, RetryPolicy
from ._errors import AnswerVerificationError, ClientError, NodeError, TransportError
from ._receipt import Receipt
from ._sync import NodeClient

__all__ = [
    "DEFAULT_MAX_MESSAGE_SIZE",
    "AnswerVerificationError",
    "AsyncNodeClient",
    "ClientConfig",
    "ClientError",
    "Keepalive",
    "NodeClient",
    "NodeError",
    "Receipt",
    "RetryPolicy",
    "TransportError",
]
