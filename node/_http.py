"""The node's HTTP side: manifest distribution, signed statements, health and metrics."""

from __future__ import annotations

import json

from aiohttp import web

from sseaun.sdk.core import envelope_from_bytes, envelope_to_json

from ._runtime import Node
from ._status_http import add_status_routes
from .store import StoreStatistics

__all__ = ["MANIFEST_PATH", "STATEMENTS_PATH", "http_app"]

MANIFEST_PATH = "/.well-known/sseaun/manifest"
STATEMENTS_PATH = "/.well-known/sseaun/statements"
_JSON = "application/json"

# The store's counters (Store.statistics(), no IO): name, type, help, field.
_STORE_METRICS = (
    ("sseaun_store_queued_writes", "gauge", "Store writes submitted and not finished.",
     "queued_writes"),
    ("sseaun_store_pending_nonce_claims", "gauge", "Nonce claims waiting for a group commit.",
     "pending_nonce_claims"),
    ("sseaun_store_pending_log_appends", "gauge", "Access-log appends waiting for a group commit.",
     "pending_log_appends"),
    ("sseaun_store_transactions_total", "counter", "Write transactions committed.",
     "transactions_committed"),
    ("sseaun_store_group_commits_total", "counter",
     "Group commits (nonce claims and access-log appends together).", "nonce_batches_committed"),
    ("sseaun_store_nonces_claimed_total", "counter", "Nonce claims that stored an unseen nonce.",
     "nonces_claimed"),
    ("sseaun_store_nonces_refused_total", "counter", "Nonce claims refused (replay or expired).",
     "nonces_refused"),
    ("sseaun_store_log_entries_appended_total", "counter", "Access-log entries appended.",
     "log_entries_appended"),
    ("sseaun_store_records_inserted_total", "counter", "Record versions inserted.",
     "records_inserted"),
    ("sseaun_store_records_merged_total", "counter", "Record versions given merged envelopes.",
     "records_merged"),
)  # fmt: skip


def _store_metrics(statistics: StoreStatistics) -> str:
    """The store's counters in the Prometheus text format (since the store was opened)."""
    lines: list[str] = []
    for name, kind, help_text, field in _STORE_METRICS:
        lines += [
            f"# HELP {name} {help_text}",
            f"# TYPE {name} {kind}",
            f"{name} {getattr(statistics, field)}",
        ]
    return "\n".join(lines) + "\n"


def http_app(node: Node, *, serving: dict[str, bool]) -> web.Application:
    """The aiohttp application; serving["ok"] is False once shutdown has begun."""

    async def manifest(_: web.Request) -> web.Response:
        return web.Response(text=envelope_to_json(node.trust.current.envelope), content_type=_JSON)

    async def manifest_version(request: web.Request) -> web.Response:
        text = request.match_info["version"]
        # ASCII digits only: int() would also take "+1", "0_1", " 1" and other scripts' digits.
        if not (text.isascii() and text.isdigit()):
            raise web.HTTPBadRequest(text="version must be a decimal number")
        version = int(text)
        trusted = node.trust.version(version)
        if trusted is None:
            raise web.HTTPNotFound(text="no such manifest version")
        return web.Response(text=envelope_to_json(trusted.envelope), content_type=_JSON)

    async def statements(_: web.Request) -> web.Response:
        items = [
            json.loads(envelope_to_json(envelope_from_bytes(raw)))
            for _kind, raw in await node.store.statements()
        ]
        return web.json_response({"statements": items})

    async def healthz(_: web.Request) -> web.Response:
        problems = dict(node.problems)
        expired = node.manifest_problem()
        if expired is not None:
            problems["manifest"] = f"{expired.reason.value}: {expired.message}"
        if not serving["ok"]:
            problems["shutdown"] = "the node is stopping"
        body = {
            "status": "SERVING" if not problems else "NOT_SERVING",
            "institutions": list(node.config.institutions),
            "manifest_version": node.trust.current.version,
            "problems": problems,
            "warnings": dict(node.warnings),
        }
        return web.json_response(body, status=200 if not problems else 503)

    async def metrics(_: web.Request) -> web.Response:
        node.metrics.set_gauge("sseaun_manifest_version", node.trust.current.version)
        text = node.metrics.render() + _store_metrics(node.store.statistics())
        return web.Response(text=text, content_type="text/plain")

    app = web.Application(client_max_size=64 * 1024)
    app.router.add_get(MANIFEST_PATH, manifest)
    app.router.add_get(MANIFEST_PATH + "/{version}", manifest_version)
    app.router.add_get(STATEMENTS_PATH, statements)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", metrics)
    add_status_routes(app, node)  # public credential status lists (CRED-5)
    return app
