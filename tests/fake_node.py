"""The fake node of the SDK's tests: the conformance suite's misbehaving server, re-exported.

One implementation lives in ``sseaun.conformance._fake_server`` (the suite must not depend on
tests/); see its docstring for the misbehaviours.
"""

from sseaun.conformance._fake_server import (
    CALLER_INSTITUTION,
    COURSES,
    DEFAULT_PAGE_SIZE,
    GET_MANIFEST,
    GET_RECORD,
    LIST_RECORDS,
    MAX_PAGE_SIZE,
    NODE_INSTITUTION,
    OTHER_INSTITUTION,
    OUTSIDER,
    WATCH_CHANGES,
    FakeInstitution,
    FakeNetwork,
    FakeNode,
    Misbehaviour,
    Received,
    trusted_network,
)

__all__ = [
    "CALLER_INSTITUTION",
    "COURSES",
    "DEFAULT_PAGE_SIZE",
    "GET_MANIFEST",
    "GET_RECORD",
    "LIST_RECORDS",
    "MAX_PAGE_SIZE",
    "NODE_INSTITUTION",
    "OTHER_INSTITUTION",
    "OUTSIDER",
    "WATCH_CHANGES",
    "FakeInstitution",
    "FakeNetwork",
    "FakeNode",
    "Misbehaviour",
    "Received",
    "trusted_network",
]
