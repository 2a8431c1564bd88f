"""Rules that must hold when requests arrive at the same time (the server runs a thread pool)."""

from __future__ import annotations

import functools
import threading
from collections import Counter
from collections.abc import Callable

import httpx

from tests.server.conftest import Env

N = 8


def _at_once(call: Callable[[int], httpx.Response]) -> list[httpx.Response]:
    barrier = threading.Barrier(N)
    out: list[httpx.Response | None] = [None] * N
    errors: list[BaseException] = []

    def run(i: int) -> None:
        try:
            barrier.wait(timeout=30)
            out[i] = call(i)
        except BaseException as e:  # reported below
            errors.append(e)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(N)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors
    return [r for r in out if r is not None]


def _statuses(responses: list[httpx.Response]) -> dict[int, int]:
    return dict(Counter(r.status_code for r in responses))


def test_concurrent_creates_of_one_cluster_name(env: Env) -> None:
    rs = _at_once(lambda i: env.admin.post("clusters", json={"name": "race"}))
    assert _statuses(rs) == {201: 1, 409: N - 1}, [r.text for r in rs if r.status_code >= 500]
    assert [c["name"] for c in env.admin.ok("GET", "clusters")["items"]] == ["race"]


def test_concurrent_credentials_with_one_name(env: Env) -> None:
    env.cluster("c1")

    def create(i: int) -> httpx.Response:
        body = {
            "name": "same",
            "cluster": "c1",
            "scope": "cluster",
            "server": f"r{i}.example.com",
            "username": "u",
            "password": "pw-race-Gh61zz",
        }
        return env.admin.post("credentials", json=body)

    rs = _at_once(create)
    named = [c for c in env.admin.ok("GET", "credentials")["items"] if c["name"] == "same"]
    assert len(named) == 1, f"{len(named)} credentials named 'same' land in every namespace of c1"
    assert _statuses(rs) == {201: 1, 409: N - 1}


def _put_namespace(env: Env, path: str, _: int) -> httpx.Response:
    return env.admin.put(path, json={"project": "web"})


def test_concurrent_registration_of_one_namespace(env: Env) -> None:
    env.cluster("c1")
    env.project("web")
    names = [f"shop-{round_}" for round_ in range(3)]  # a race: several chances to show
    for name in names:
        path = f"clusters/c1/namespaces/{name}"
        rs = _at_once(functools.partial(_put_namespace, env, path))
        assert _statuses(rs) == {200: N}, [r.text for r in rs if r.status_code != 200]
    listed = env.admin.ok("GET", "clusters/c1/namespaces")["items"]
    assert [(n["name"], n["project"]) for n in listed] == [(name, "web") for name in names]


def test_concurrent_credentials_for_one_address(env: Env) -> None:
    env.cluster("c1")

    def create(i: int) -> httpx.Response:
        body = {
            "name": f"addr-{i}",
            "cluster": "c1",
            "scope": "cluster",
            "server": "same.example.com",
            "username": "u",
            "password": "pw-race-Gh61zz",
        }
        return env.admin.post("credentials", json=body)

    assert _statuses(_at_once(create)) == {201: N}
    items = env.admin.ok("GET", "credentials")["items"]
    effective = [c for c in items if c["effective"]]
    assert len(effective) == 1
    assert all(c["superseded_by"] == effective[0]["id"] for c in items if not c["effective"])
