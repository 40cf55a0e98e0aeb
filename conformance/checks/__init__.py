"""The checks, one module per area; importing this package registers them all."""

from . import _auth, _client, _envelope, _errors, _feed, _grpc, _log, _manifest, _records  # noqa: F401
