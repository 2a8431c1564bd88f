"""`pullkeeper manifest inspect|create|annotate|push|rm|ls` against real registries.

What pullkeeper pushes is read back by skopeo (`inspect --raw`, `copy --all`), the
reference client: the platforms, digests and media types must be what skopeo sees.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.integration.conftest import Result, isolated_env, pk
from tests.registry.servers import (
    APP,
    MULTI,
    MULTI_DOCKER,
    Credentials,
    PlainRegistry,
    RunningRegistry,
    TokenRegistry,
)

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"


@dataclass(frozen=True)
class User:
    """A user's home with a docker config for one registry; runs pullkeeper as them."""

    env: dict[str, str]
    config: Path
    registry: RunningRegistry
    secret: str

    def pk(self, *args: str) -> Result:
        tls = ["--ca-file", str(self.registry.ca_file)] if self.registry.ca_file else ["--insecure"]
        result = pk(*args, "--config", str(self.config), *tls, env=self.env)
        assert self.secret not in result.stdout + result.stderr, result.describe()
        return result

    def local(self, *args: str) -> Result:
        return pk(*args, env=self.env)


def _user(tmp_path: Path, registry: RunningRegistry, credentials: Credentials | None) -> User:
    env = isolated_env(tmp_path / "home")
    auths = {}
    if credentials is not None:
        auth = base64.b64encode(credentials.creds.encode()).decode()
        auths[registry.host] = {"auth": auth}
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"auths": auths}))
    return User(env, config, registry, credentials.password if credentials else "\0")


@pytest.fixture
def alice(tmp_path: Path, token_registry: TokenRegistry) -> User:
    return _user(tmp_path, token_registry, token_registry.alice)


def _raw(
    registry: RunningRegistry, name: str, credentials: Credentials | None
) -> dict[str, object]:
    result = registry.inspect(name, "--raw", credentials=credentials)
    assert result.returncode == 0, result.describe()
    doc: dict[str, object] = json.loads(result.out)
    return doc


def _platforms(doc: dict[str, object]) -> dict[str, str]:
    entries = doc["manifests"]
    assert isinstance(entries, list)
    return {
        "/".join(
            p
            for p in (
                e["platform"]["os"],
                e["platform"]["architecture"],
                e["platform"].get("variant"),
            )
            if p
        ): e["digest"]
        for e in entries
    }


# --------------------------------------------------------------------------- inspect


def test_inspect_an_index_agrees_with_skopeo(alice: User, token_registry: TokenRegistry) -> None:
    multi = token_registry.image(MULTI)
    shown = alice.pk("manifest", "inspect", token_registry.ref(MULTI), "-o", "json")
    assert shown.returncode == 0, shown.describe()
    doc = shown.json()
    assert doc["digest"] == multi.digest
    assert doc["media_type"] == multi.media_type == OCI_INDEX
    assert doc["size"] == len(multi.raw_manifest)
    assert {m["platform"]: m["digest"] for m in doc["manifests"]} == dict(multi.platform_digests)
    raw_entries = json.loads(multi.raw_manifest)["manifests"]
    assert [m["size"] for m in doc["manifests"]] == [e["size"] for e in raw_entries]

    text = alice.pk("manifest", "inspect", token_registry.ref(MULTI))
    assert text.returncode == 0, text.describe()
    for platform, digest in multi.platform_digests.items():
        assert any(platform in line and digest in line for line in text.stdout.splitlines())

    raw = alice.pk("manifest", "inspect", "--raw", token_registry.ref(MULTI))
    assert raw.out == multi.raw_manifest


def test_inspect_a_single_image_reads_its_platform_from_the_config(
    alice: User, token_registry: TokenRegistry
) -> None:
    app = token_registry.image(APP)
    doc = alice.pk("manifest", "inspect", token_registry.ref(APP), "-o", "json").json()
    assert doc["digest"] == app.digest
    assert [doc["platform"]] == list(app.platform_digests)
    raw = json.loads(app.raw_manifest)
    assert [layer["digest"] for layer in doc["layers"]] == [x["digest"] for x in raw["layers"]]


def test_inspect_refusals(alice: User, token_registry: TokenRegistry, tmp_path: Path) -> None:
    missing = alice.pk("manifest", "inspect", token_registry.ref("team-a/app:no-such-tag"))
    assert missing.returncode == 1, missing.describe()
    assert "no-such-tag does not exist" in missing.stderr

    wrong = _user(
        tmp_path / "wrong", token_registry, Credentials(username="alice", password="nope-x")
    )
    refused = wrong.pk("manifest", "inspect", token_registry.ref(MULTI))
    assert refused.returncode == 1, refused.describe()
    assert "refused the login of 'alice'" in refused.stderr

    bad = alice.pk("manifest", "inspect", "Not A Reference")
    assert bad.returncode == 2 and "not a valid image reference" in bad.stderr, bad.describe()


# --------------------------------------------------------------------------- create, push


def test_create_annotate_push_and_skopeo_copies_every_platform(
    alice: User, token_registry: TokenRegistry, tmp_path: Path
) -> None:
    app, multi = token_registry.image(APP), token_registry.image(MULTI)
    arm = multi.platform_digests["linux/arm64/v8"]
    target = token_registry.ref("team-a/combined:v1")
    sources = [token_registry.ref(APP), f"{token_registry.ref('team-a/multi')}@{arm}"]

    created = alice.pk("manifest", "create", target, *sources, "-o", "json")
    assert created.returncode == 0, created.describe()
    entries = created.json()["entries"]
    assert [(e["digest"], e["platform"]["architecture"]) for e in entries] == [
        (app.digest, "amd64"),
        (arm, "arm64"),
    ]
    assert entries[1]["platform"]["variant"] == "v8"  # as the image's config declares it
    assert created.json()["media_type"] == OCI_INDEX  # the images are OCI manifests

    again = alice.pk("manifest", "create", target, token_registry.ref(APP))
    assert again.returncode == 2 and "--amend" in again.stderr, again.describe()

    # Nothing is in the registry until the push.
    before = token_registry.inspect("team-a/combined:v1", credentials=token_registry.alice)
    assert before.returncode != 0

    annotated = alice.local(
        "manifest",
        "annotate",
        target,
        app.digest,  # an entry named by its digest alone
        "--os-features",
        "sse4",
        "-o",
        "json",
    )
    assert annotated.returncode == 0, annotated.describe()
    assert annotated.json()["entries"][0]["platform"]["os.features"] == ["sse4"]

    local = alice.pk("manifest", "inspect", target, "-o", "json")
    assert local.returncode == 0 and local.json()["local"] is True, local.describe()

    pushed = alice.pk("manifest", "push", target, "-o", "json")
    assert pushed.returncode == 0, pushed.describe()
    result = pushed.json()
    # Both images live in other repositories: they were copied into team-a/combined.
    assert sorted(result["copied"]) == sorted(sources)

    served = _raw(token_registry, "team-a/combined:v1", token_registry.alice)
    assert served["mediaType"] == OCI_INDEX
    assert _platforms(served) == {"linux/amd64": app.digest, "linux/arm64/v8": arm}
    assert served["manifests"][0]["platform"]["os.features"] == ["sse4"]  # type: ignore[index]
    digest = token_registry.inspect("team-a/combined:v1", credentials=token_registry.alice)
    assert digest.returncode == 0 and digest.json()["Digest"] == result["digest"]
    assert local.json()["digest"] == result["digest"]  # what was shown is what was pushed

    copy = token_registry.skopeo(
        "copy",
        "--all",
        *token_registry.tls_args("src-"),
        "--src-creds",
        token_registry.alice.creds,
        f"docker://{target}",
        f"oci:{tmp_path / 'copy'}:v1",
    )
    assert copy.returncode == 0, copy.describe()
    layout_index = json.loads((tmp_path / "copy" / "index.json").read_text())
    (top,) = layout_index["manifests"]
    copied = json.loads((tmp_path / "copy" / "blobs" / "sha256" / top["digest"][7:]).read_bytes())
    assert {m["digest"] for m in copied["manifests"]} == {app.digest, arm}

    # The list stays local (without --purge) and can be pushed again: same digest.
    listed = alice.local("manifest", "ls")
    assert "team-a/combined:v1" in listed.stdout, listed.describe()
    repeat = alice.pk("manifest", "push", target, "--purge", "-o", "json")
    assert repeat.returncode == 0, repeat.describe()
    assert repeat.json()["digest"] == result["digest"] and repeat.json()["copied"] == []
    assert "no local lists" in alice.local("manifest", "ls").stdout


def test_docker_schema_2_images_make_a_docker_manifest_list(
    alice: User, token_registry: TokenRegistry
) -> None:
    docker = token_registry.image(MULTI_DOCKER)
    repository = token_registry.ref("team-a/multi-docker")
    sources = [f"{repository}@{d}" for d in docker.platform_digests.values()]
    target = token_registry.ref("team-a/multi-docker:rebuilt")
    created = alice.pk("manifest", "create", target, *sources)
    assert created.returncode == 0, created.describe()
    pushed = alice.pk("manifest", "push", target, "--purge", "-o", "json")
    assert pushed.returncode == 0, pushed.describe()
    assert pushed.json()["media_type"] == DOCKER_LIST and pushed.json()["copied"] == []
    served = _raw(token_registry, "team-a/multi-docker:rebuilt", token_registry.alice)
    assert served["mediaType"] == DOCKER_LIST
    assert _platforms(served) == dict(docker.platform_digests)


def test_create_refusals(alice: User, token_registry: TokenRegistry) -> None:
    multi = token_registry.image(MULTI)
    target = token_registry.ref("team-a/refused:v1")

    nested = alice.pk("manifest", "create", target, token_registry.ref(MULTI))
    assert nested.returncode == 2, nested.describe()
    assert "is itself a manifest list" in nested.stderr
    assert all(d in nested.stderr for d in multi.platform_digests.values())

    elsewhere = alice.pk("manifest", "create", target, "quay.io/team/app:v1")
    assert elsewhere.returncode == 2 and "its own registry" in elsewhere.stderr

    amd = multi.platform_digests["linux/amd64"]
    clash = alice.pk(
        "manifest",
        "create",
        target,
        token_registry.ref(APP),
        f"{token_registry.ref('team-a/multi')}@{amd}",
    )
    assert clash.returncode == 2 and "both for linux/amd64" in clash.stderr, clash.describe()

    by_digest = alice.pk(
        "manifest", "create", f"{token_registry.ref('team-a/x')}@{amd}", token_registry.ref(APP)
    )
    assert by_digest.returncode == 2 and "not a digest" in by_digest.stderr

    # Nothing was saved by the refused creates.
    assert "no local lists" in alice.local("manifest", "ls").stdout


def test_annotate_refusals(alice: User, token_registry: TokenRegistry) -> None:
    target = token_registry.ref("team-a/annotated:v1")
    assert alice.pk("manifest", "create", target, token_registry.ref(APP)).returncode == 0
    unknown = alice.local(
        "manifest", "annotate", target, token_registry.ref(APP), "--os", "linux", "--arch", "vax"
    )
    assert unknown.returncode == 2 and "not a known os/arch" in unknown.stderr, unknown.describe()
    absent = alice.local(
        "manifest", "annotate", target, token_registry.ref("team-a/other:v1"), "--arch", "arm64"
    )
    assert absent.returncode == 2 and "is not in" in absent.stderr, absent.describe()
    nothing = alice.local("manifest", "annotate", target, token_registry.ref(APP))
    assert nothing.returncode == 2 and "nothing to annotate" in nothing.stderr
    # The refused annotations changed nothing.
    shown = alice.pk("manifest", "inspect", target, "-o", "json").json()
    assert [m["platform"] for m in shown["manifests"]] == ["linux/amd64"]
    assert alice.local("manifest", "rm", target).returncode == 0
    gone = alice.local("manifest", "rm", target)
    assert gone.returncode == 2 and "no local list" in gone.stderr


def test_push_without_push_access_is_denied_and_the_list_is_kept(
    tmp_path: Path, token_registry: TokenRegistry
) -> None:
    bob = _user(tmp_path, token_registry, token_registry.bob)
    target = token_registry.ref("team-b/combined:v1")
    created = bob.pk("manifest", "create", target, token_registry.ref("team-b/other:v1"))
    assert created.returncode == 0, created.describe()
    denied = bob.pk("manifest", "push", target, "--purge")
    assert denied.returncode == 1, denied.describe()
    assert "no access to team-b/combined" in denied.stderr
    assert "team-b/combined:v1" in bob.local("manifest", "ls").stdout
    missing = bob.pk("manifest", "push", token_registry.ref("team-b/never:v1"))
    assert missing.returncode == 2 and "no local list" in missing.stderr


def test_insecure_plain_registry(tmp_path: Path, plain_registry: PlainRegistry) -> None:
    user = _user(tmp_path, plain_registry, None)
    multi = plain_registry.image(MULTI)
    sources = [f"{plain_registry.ref('team-a/multi')}@{d}" for d in multi.platform_digests.values()]
    target = plain_registry.ref("team-a/plain-list:v1")
    assert user.pk("manifest", "create", target, *sources).returncode == 0
    pushed = user.pk("manifest", "push", target, "--purge", "-o", "json")
    assert pushed.returncode == 0, pushed.describe()
    served = _raw(plain_registry, "team-a/plain-list:v1", None)
    assert _platforms(served) == dict(multi.platform_digests)
    # Without --insecure the plain-HTTP registry is not contacted over plain HTTP.
    refused = pk("manifest", "inspect", target, env=user.env)
    assert refused.returncode == 1 and "--insecure" in refused.stderr, refused.describe()
