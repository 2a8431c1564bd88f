"""Pull checks and credential verification, done by the server with the secrets it holds."""

from __future__ import annotations

from functools import partial
from typing import Any

import anyio.to_thread
from fastapi import APIRouter

from pullkeeper.api.deps import ActorDep, ServerDep
from pullkeeper.services import checks
from pullkeeper.services.schemas import CheckIn

router = APIRouter(tags=["checks"])
# Checks wait on registries for seconds; they get threads of their own so that they
# never hold up the API's request threads.
_CHECK_THREADS = 16
_limiter: anyio.CapacityLimiter | None = None


async def _off_the_request_threads(call: partial[dict[str, Any]]) -> dict[str, Any]:
    global _limiter  # noqa: PLW0603 - created lazily, inside the event loop
    if _limiter is None:
        _limiter = anyio.CapacityLimiter(_CHECK_THREADS)
    return await anyio.to_thread.run_sync(call, limiter=_limiter)


@router.post("/checks")
async def run_check(body: CheckIn, actor: ActorDep, server: ServerDep) -> dict[str, Any]:
    """Can this image be pulled in this namespace (or with this credential file), with which
    credential, and why not."""
    request = checks.CheckRequest(
        body.image,
        body.cluster or "",
        body.namespace or "",
        body.platform,
        body.pull_policy,
        body.all,
        body.on_node,
        dict(body.node_labels),
    )
    if body.config is None:
        call = partial(checks.run, server, actor, request)
    else:
        content = body.config.encode()
        call = partial(checks.run_with_file, server, actor, request, content, "config")
    return await _off_the_request_threads(call)


@router.post("/credentials/{credential_id}/verify")
async def verify_credential(
    credential_id: str, actor: ActorDep, server: ServerDep
) -> dict[str, Any]:
    """Log in to the registry with the credential; its last_check holds the result."""
    return await _off_the_request_threads(partial(checks.verify, server, actor, credential_id))


@router.get("/credentials/{credential_id}/checks")
def credential_checks(credential_id: str, actor: ActorDep, server: ServerDep) -> dict[str, Any]:
    """The credential's last checks, newest first: logins (verify) and pull checks' attempts,
    with when, by whom, and the cause and message of a failure."""
    return {"items": checks.history(server, actor, credential_id)}
