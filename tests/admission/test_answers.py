"""The bytes the webhook answers: each kind of answer the same JSON as the plain encoding of
its AdmissionReview (uids that need escaping included), and a body read in pieces."""

from __future__ import annotations

import json
import threading
from typing import Any

import pytest

from pullkeeper.services.admission import encode_review
from tests.admission.conftest import Hook, pod, review
from tests.tools import run_async

UIDS = [
    "705ab4f5-6393-11e8-b7cc-42010a800002",
    'quo"te',
    "back\\slash/and\u2028line",
    "ünïcødé ☸ 🐳",
    "control\n\t\x01chars",
]


@pytest.mark.parametrize("uid", UIDS)
def test_every_answer_is_the_json_of_its_review(hook: Hook, uid: str) -> None:
    hook.cred("wide-quay")
    webhook = hook.server.admission
    assert webhook is not None
    hook.policy(forbid_latest=True)
    patched = review(pod("quay.io/team/app:v1"))["request"]
    denied = review(pod("quay.io/team/app:latest"))["request"]
    passed = review(pod("quay.io/team/app:v1"), operation="DELETE")["request"]
    answers = [
        webhook.mutate({**patched, "uid": uid}, "c1"),
        webhook.validate({**passed, "uid": uid}, "c1"),
        webhook.validate({**denied, "uid": uid}, "c1"),
    ]
    hook.policy(mode="warn")
    answers.append(webhook.validate({**denied, "uid": uid}, "c1"))
    assert [set(a["response"]) - {"uid", "allowed"} for a in answers] == [
        {"patchType", "patch"},
        set(),
        {"status"},
        {"warnings"},
    ]
    for answer in answers:
        encoded = encode_review(answer)
        # What the webhook answered before it had an envelope of its own.
        plain = json.dumps(answer, separators=(",", ":")).encode()
        assert json.loads(encoded) == json.loads(plain) == answer
        assert json.loads(encoded)["response"]["uid"] == uid


@pytest.mark.parametrize("uid", UIDS)
def test_the_listener_answers_with_the_uid_it_was_given(hook: Hook, uid: str) -> None:
    body = review(pod("quay.io/team/app:v1"))
    body["request"]["uid"] = uid
    answer = hook.client.post("/admission/mutate/c1", content=json.dumps(body).encode())
    assert answer.status_code == 200 and answer.headers["content-type"] == "application/json"
    assert answer.json()["response"] == {"uid": uid, "allowed": True}


def _call(hook: Hook, pieces: list[bytes]) -> tuple[int, dict[str, Any]]:
    """The webhook listener's application called as a server that hands it the body in
    pieces."""
    app = hook.client.app
    messages = [
        {"type": "http.request", "body": p, "more_body": i < len(pieces) - 1}
        for i, p in enumerate(pieces)
    ]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return messages.pop(0)

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "http", "method": "POST", "path": "/admission/validate/c1", "headers": []}
    run_async(app(scope, receive, send))  # type: ignore[arg-type]
    return sent[0]["status"], json.loads(sent[1]["body"])


def test_a_body_in_pieces_is_read_whole_and_its_size_limited(hook: Hook) -> None:
    body = json.dumps(review(pod("quay.io/team/app:v1"))).encode()
    status, doc = _call(hook, [body[:10], body[10:100], body[100:]])
    assert status == 200 and doc["response"]["allowed"] is True
    limit = hook.server.settings.max_body_bytes
    status, doc = _call(hook, [b" " * (limit // 2), b" " * (limit // 2), b" " * 10, b"{}"])
    assert status == 413 and doc["error"]["message"] == f"the review exceeds {limit} bytes"
    status, doc = _call(hook, [b" " * (limit + 1)])
    assert status == 413
    status, doc = _call(hook, [body[:10], b"}"])
    assert status == 400 and doc["error"]["message"].startswith("the body is not JSON: ")


class _Sync:
    """A running sync as the webhook sees it: leading (its statuses in memory) or a follower
    (they are read from the store); it records the thread each lookup ran on."""

    def __init__(self, leading: bool) -> None:
        self.leading, self.synced_by = leading, ""
        self.threads: list[threading.Thread] = []

    @property
    def statuses(self) -> _Sync:
        return self

    def conflicts(self, cluster_id: str, namespace: str) -> frozenset[str]:
        self.threads.append(threading.current_thread())
        return frozenset()


def _sent(hook: Hook, body: bytes) -> tuple[list[dict[str, Any]], threading.Thread]:
    """What the listener's application sends for a mutate review, and the thread its event
    loop ran on."""
    sent: list[dict[str, Any]] = []
    loop: list[threading.Thread] = []

    async def receive() -> dict[str, Any]:
        loop.append(threading.current_thread())
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "http", "method": "POST", "path": "/admission/mutate/c1", "headers": []}
    run_async(hook.client.app(scope, receive, send))  # type: ignore[arg-type]
    return sent, loop[0]


def test_a_followers_decision_which_reads_the_store_never_runs_on_the_event_loop(
    hook: Hook,
) -> None:
    hook.cred("robot", server="quay.io")
    body = json.dumps(review(pod("quay.io/team/app:v1"), namespace="shop")).encode()
    for leading in (True, False):
        sync = _Sync(leading)
        hook.server.sync = sync  # type: ignore[assignment]
        try:
            sent, loop = _sent(hook, body)
        finally:
            hook.server.sync = None
        assert sent[0]["status"] == 200 and json.loads(sent[1]["body"])["response"]["patch"]
        on_loop = [t is loop for t in sync.threads]
        assert on_loop == [leading], leading  # the leader's statuses are in memory: on the loop
