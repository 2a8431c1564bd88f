"""The admission webhook: AdmissionReview v1 in, AdmissionReview out (no API token: the
Kubernetes API server calls it over TLS)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from pullkeeper.services.admission import BadReview, parse_review

router = APIRouter(tags=["admission"])


async def _review(request: Request, webhook: str, cluster: str | None) -> JSONResponse:
    hook = request.app.state.server.admission
    try:
        review = parse_review(await request.body())
    except BadReview as e:
        return JSONResponse(
            {"error": {"code": "bad_request", "message": str(e), "field": None}}, 400
        )
    if hook is None:
        return JSONResponse(
            {"error": {"code": "unavailable", "message": "the webhook is off", "field": None}}, 503
        )
    decide = hook.mutate if webhook == "mutate" else hook.validate
    # The index lookup is in memory; only a finding's audit record touches the store.
    from anyio import to_thread

    answer = await to_thread.run_sync(decide, review, cluster)
    return JSONResponse(answer)


@router.post("/admission/mutate")
async def mutate(request: Request, cluster: str | None = None) -> JSONResponse:
    """Adds a pod's pull Secrets, rewrites unqualified images, forces always-pull."""
    return await _review(request, "mutate", cluster)


@router.post("/admission/validate")
async def validate(request: Request, cluster: str | None = None) -> JSONResponse:
    """Denies (or warns about, or records) images the registry policy refuses."""
    return await _review(request, "validate", cluster)
