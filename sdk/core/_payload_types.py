"""Payload types: one per signed kind (domain separation, spec ENV-5)."""

from __future__ import annotations

__all__ = [
    "COURSE",
    "DELEGATION",
    "ERROR",
    "FEED_PAGE",
    "INSTITUTION_PROFILE",
    "JOIN_REQUEST",
    "KEY_REVOCATION",
    "LOG_DISCLOSURE",
    "MANIFEST",
    "REQUEST",
    "RESPONSE",
    "RESPONSE_KINDS",
    "payload_type",
]


def payload_type(kind: str, version: int = 1) -> str:
    """The payload type of a signed kind: ``application/vnd.sseaun.<kind>.v<N>+protobuf``."""
    return f"application/vnd.sseaun.{kind}.v{version}+protobuf"


REQUEST = payload_type("request")
RESPONSE = payload_type("response")
ERROR = payload_type("error")
FEED_PAGE = payload_type("feed-page")
MANIFEST = payload_type("manifest")
DELEGATION = payload_type("delegation")
KEY_REVOCATION = payload_type("key-revocation")
JOIN_REQUEST = payload_type("join-request")
INSTITUTION_PROFILE = payload_type("institution-profile")
COURSE = payload_type("course")
#: A disclosure of access-log entries (spec LOG-12): a JSON payload, signed by a LOG key.
LOG_DISCLOSURE = "application/vnd.sseaun.log-disclosure.v1+json"

#: What a client accepts in answer to a request.
RESPONSE_KINDS = frozenset({RESPONSE, ERROR, FEED_PAGE})
