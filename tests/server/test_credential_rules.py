"""The credential rules the pages ask the services about: who may manage a credential, and
which namespaces its Secret reaches (the world of conftest.build_world)."""

from __future__ import annotations

import pytest

from pullkeeper.services import credentials
from pullkeeper.services.actor import SYSTEM, Actor
from pullkeeper.services.errors import Forbidden, NotFound
from tests.server.conftest import ADMIN_TOKEN, Env, build_world

USERS = ("owner-a", "member-a", "viewer-a", "gviewer", "owner-b")


def _actors(env: Env, tokens: dict[str, str]) -> dict[str, Actor]:
    actors = {who: env.server.authenticate(token, "") for who, token in tokens.items()}
    return actors | {"admin": env.server.authenticate(ADMIN_TOKEN, "")}


def test_who_may_manage_is_what_the_service_lets_them_do(env: Env) -> None:
    w = build_world(env, USERS)
    actors = _actors(env, w.tokens)
    managed: dict[str, set[str]] = {}
    for who, actor in actors.items():
        managed[who] = set()
        for name, made in w.creds.items():
            with env.server.transaction() as s:
                try:
                    cred = credentials.get(s, actor, made["id"])
                except NotFound:
                    continue  # not theirs to see, let alone manage
                # The service's own check agrees: a no-op state change is allowed or refused.
                if credentials.may_manage(s, actor, cred):
                    managed[who].add(name)
                    credentials.set_state(s, actor, cred, cred.state)
                else:
                    with pytest.raises(Forbidden):
                        credentials.set_state(s, actor, cred, cred.state)
    assert managed == {
        "admin": set(w.creds),
        "owner-a": {"alpha-proj", "alpha-ns"},
        "owner-b": {"beta-proj", "beta-ns"},
        "member-a": set(),
        "viewer-a": set(),
        "gviewer": set(),
    }


def test_reach_is_the_namespaces_the_secret_lands_in(env: Env) -> None:
    w = build_world(env, ("owner-a",))
    env.namespace("kube-system")  # excluded: a cluster-wide Secret never lands there
    owner = _actors(env, w.tokens)["owner-a"]
    with env.server.reading() as s:
        cred = {name: credentials.get(s, SYSTEM, c["id"]) for name, c in w.creds.items()}
        assert credentials.reach(s, SYSTEM, cred["alpha-proj"]) == ["a-api", "a-web"]
        assert credentials.reach(s, SYSTEM, cred["alpha-ns"]) == ["a-web"]
        assert credentials.reach(s, SYSTEM, cred["gamma-proj"]) == ["g-web"]
        assert credentials.reach(s, SYSTEM, cred["c1-wide"]) == ["a-api", "a-web", "b-web", "free"]
        assert credentials.reach(s, SYSTEM, cred["c1-wide"], excluded=()) == [
            *("a-api", "a-web", "b-web", "free", "kube-system")
        ]
        # Of a cluster-wide credential, a project owner learns only their own namespaces.
        assert credentials.reach(s, owner, cred["c1-wide"]) == ["a-api", "a-web"]


def test_a_credential_spec_keeps_its_password_out_of_repr(env: Env) -> None:
    env.cluster("c1")
    with env.server.reading() as s:
        scope = credentials.find_scope(s, SYSTEM, "cluster", "c1")
    spec = credentials.CredentialSpec(
        "pull", scope, "custom", "registry.example.com", "robot", "pw-spec-repr-4Rt"
    )
    assert "pw-spec-repr" not in repr(spec) and "robot" in repr(spec)
