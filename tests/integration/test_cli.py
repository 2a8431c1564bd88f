"""The real `pullkeeper` executable: help, image parse, creds resolve, secret decode/import,
error reporting, and secrets kept out of every output unless asked for."""

from __future__ import annotations

import base64
import json
import os
import re
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path

import pytest

from .conftest import Result, assert_one_line_error, b64, pk, pk_ok

pytestmark = pytest.mark.integration

DIGEST = "sha256:" + "a" * 64


# --------------------------------------------------------------------------- version, help


def test_version() -> None:
    result = pk_ok("--version")
    assert result.stdout == f"pullkeeper {version('pullkeeper')}\n"
    assert result.err == b""


def _subcommands(help_text: str) -> list[str]:
    names = []
    in_commands = False
    for line in help_text.splitlines():
        if line == "Commands:":
            in_commands = True
        elif in_commands:
            match = re.match(r"^  (\S+)", line)
            if match is None:
                break
            names.append(match.group(1))
    return names


def test_help_on_every_command() -> None:
    seen: dict[tuple[str, ...], str] = {}
    todo: list[tuple[str, ...]] = [()]
    while todo:
        path = todo.pop()
        result = pk_ok(*path, "--help")
        assert result.err == b"", result.describe()
        usage = " ".join(("pullkeeper", *path))
        assert result.stdout.startswith(f"Usage: {usage} "), result.describe()
        short = pk_ok(*path, "-h")
        assert short.out == result.out
        seen[path] = result.stdout
        todo.extend((*path, name) for name in _subcommands(result.stdout))
    expected = {
        (),
        ("creds",),
        ("creds", "resolve"),
        ("image",),
        ("image", "parse"),
        ("kubelet-credential-provider",),
        ("secret",),
        ("secret", "create"),
        ("secret", "create", "docker-registry"),
        ("secret", "decode"),
        ("secret", "import"),
        ("serve",),
    }
    assert expected <= set(seen), sorted(seen)


def test_unknown_command_is_an_error() -> None:
    result = pk("no-such-command")
    assert result.returncode == 2, result.describe()
    assert "Traceback" not in result.stderr
    assert "no-such-command" in result.stderr


# --------------------------------------------------------------------------- image parse

PARSED_KEYS = {
    "input",
    "name",
    "domain",
    "path",
    "tag",
    "digest",
    "string",
    "familiar",
    "familiar_name",
}

VALID_REFS = {
    "nginx": {
        "name": "docker.io/library/nginx",
        "domain": "docker.io",
        "path": "library/nginx",
        "tag": None,
        "digest": None,
        "string": "docker.io/library/nginx",
        "familiar": "nginx",
        "familiar_name": "nginx",
    },
    "library/nginx:1.25": {
        "name": "docker.io/library/nginx",
        "domain": "docker.io",
        "path": "library/nginx",
        "tag": "1.25",
        "digest": None,
        "string": "docker.io/library/nginx:1.25",
        "familiar": "nginx:1.25",
        "familiar_name": "nginx",
    },
    "index.docker.io/team/app": {
        "name": "docker.io/team/app",
        "domain": "docker.io",
        "path": "team/app",
        "tag": None,
        "digest": None,
        "string": "docker.io/team/app",
        "familiar": "team/app",
        "familiar_name": "team/app",
    },
    f"localhost:5000/team/app:v1@{DIGEST}": {
        "name": "localhost:5000/team/app",
        "domain": "localhost:5000",
        "path": "team/app",
        "tag": "v1",
        "digest": DIGEST,
        "string": f"localhost:5000/team/app:v1@{DIGEST}",
        "familiar": f"localhost:5000/team/app:v1@{DIGEST}",
        "familiar_name": "localhost:5000/team/app",
    },
    "quay.io/org/app@" + DIGEST: {
        "name": "quay.io/org/app",
        "domain": "quay.io",
        "path": "org/app",
        "tag": None,
        "digest": DIGEST,
        "string": "quay.io/org/app@" + DIGEST,
        "familiar": "quay.io/org/app@" + DIGEST,
        "familiar_name": "quay.io/org/app",
    },
}
INVALID_REFS = ["Nginx", "nginx:", "a b", "a" * 64, ""]


def _lines(result: Result) -> list[dict[str, object]]:
    return [json.loads(line) for line in result.stdout.splitlines()]


def _check_parsed(parsed: list[dict[str, object]], refs: list[str]) -> None:
    assert [p["input"] for p in parsed] == refs
    for p in parsed:
        ref = p["input"]
        if ref in VALID_REFS:
            assert set(p) == PARSED_KEYS, p
            assert p == {"input": ref, **VALID_REFS[ref]}
        else:
            assert set(p) == {"input", "error"}, p
            assert isinstance(p["error"], str)
            assert p["error"]


def test_image_parse_json_all_valid() -> None:
    refs = list(VALID_REFS)
    result = pk_ok("image", "parse", *refs, "-o", "json")
    assert result.err == b""
    _check_parsed(_lines(result), refs)


@pytest.mark.parametrize("bad", INVALID_REFS)
def test_image_parse_json_invalid_exits_1(bad: str) -> None:
    refs = ["nginx", bad, "quay.io/org/app@" + DIGEST]
    result = pk("image", "parse", *refs, "-o", "json")
    assert result.returncode == 1, result.describe()
    assert "Traceback" not in result.stderr
    _check_parsed(_lines(result), refs)


def test_image_parse_error_messages_are_distributions() -> None:
    result = pk("image", "parse", "a b", "nginx:", "-o", "json")
    assert result.returncode == 1
    assert [p["error"] for p in _lines(result)] == ["invalid reference format"] * 2


def test_image_parse_text_exit_status() -> None:
    ok = pk_ok("image", "parse", "nginx")
    assert "docker.io/library/nginx" in ok.stdout
    bad = pk("image", "parse", "nginx", "a b")
    assert bad.returncode == 1, bad.describe()
    assert "Traceback" not in bad.stderr
    assert "invalid reference format" in bad.stdout


def test_image_parse_reads_stdin() -> None:
    refs = ["nginx", f"localhost:5000/team/app:v1@{DIGEST}", "library/nginx:1.25"]
    # One reference per line; a CRLF line ending is not part of the reference.
    stdin = "nginx\r\n" + "\n".join(refs[1:]) + "\n"
    result = pk_ok("image", "parse", "-o", "json", stdin=stdin)
    _check_parsed(_lines(result), refs)
    bad = pk("image", "parse", "-o", "json", stdin="nginx\nNot Valid\n")
    assert bad.returncode == 1, bad.describe()
    _check_parsed(_lines(bad), ["nginx", "Not Valid"])


def test_image_parse_undecodable_stdin_in_a_strict_utf8_locale() -> None:
    """In a UTF-8 locale other than C.UTF-8 (en_US.UTF-8, ...) Python's stdin is strict;
    PYTHONIOENCODING=utf-8:strict gives the same stdin here. A byte that is not UTF-8 is an
    invalid reference (exit 1), not a crash."""
    env = {**os.environ, "PYTHONIOENCODING": "utf-8:strict"}
    result = pk("image", "parse", "-o", "json", stdin=b"nginx\n\xff\n", env=env)
    assert "Traceback" not in result.stderr, result.describe()
    assert result.returncode == 1, result.describe()
    assert json.loads(result.stdout.splitlines()[0])["input"] == "nginx"


# --------------------------------------------------------------------------- credential files

IMAGE = "registry.example.com/team/app:v1"


def dockerconfigjson_secret_yaml(name: str, payload: bytes | str, type_: str | None = None) -> str:
    return (
        "apiVersion: v1\n"
        "kind: Secret\n"
        f"metadata:\n  name: {name}\n  namespace: team\n"
        f"type: {type_ or 'kubernetes.io/dockerconfigjson'}\n"
        f"data:\n  .dockerconfigjson: {b64(payload)}\n"
    )


@dataclass(frozen=True)
class Files:
    config_json: Path
    dockercfg: Path
    secret_yaml: Path
    secret_json: Path
    node: Path
    passwords: dict[str, str]


@pytest.fixture
def files(tmp_path: Path) -> Files:
    passwords = {
        "cfg-user": "pw-cfgjson-Zq81",
        "dcfg-user": "pw-dockercfg-Xk22",
        "v1-user": "pw-v1:key-Lm33",
        "glob-user": "pw-glob&<>-Rt44",
        "app-user": "pw-app-Qe55",
        "node-user": "pw-node-Wy66",
        "hub-user": "pw-hub-Pa77",
    }
    d = tmp_path / "creds"
    d.mkdir()
    config_json = d / "config.json"
    config_json.write_text(
        json.dumps(
            {
                "auths": {
                    "registry.example.com": {
                        "auth": b64(f"cfg-user:{passwords['cfg-user']}"),
                        "email": "cfg@example.com",
                    }
                }
            },
            indent="\t",
        )
    )
    dockercfg = d / ".dockercfg"
    dockercfg.write_text(
        json.dumps(
            {
                "https://registry.example.com/team": {
                    "auth": b64(f"dcfg-user:{passwords['dcfg-user']}"),
                    "email": "d@example.com",
                }
            }
        )
    )
    secret_yaml = d / "pull-secret.yaml"
    secret_yaml.write_text(
        dockerconfigjson_secret_yaml(
            "glob",
            json.dumps(
                {
                    "auths": {
                        "*.example.com": {
                            "username": "glob-user",
                            "password": passwords["glob-user"],
                        },
                        "https://registry.example.com/v1/": {
                            "username": "v1-user",
                            "password": passwords["v1-user"],
                        },
                        "https://index.docker.io/v1/": {
                            "username": "hub-user",
                            "password": passwords["hub-user"],
                        },
                    }
                }
            ),
        )
    )
    secret_json = d / "legacy-secret.json"
    secret_json.write_text(
        json.dumps(
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {"name": "legacy"},
                "type": "kubernetes.io/dockercfg",
                "data": {
                    ".dockercfg": b64(
                        json.dumps(
                            {
                                "registry.example.com/team/app": {
                                    "username": "app-user",
                                    "password": passwords["app-user"],
                                    "email": "app@example.com",
                                }
                            }
                        )
                    )
                },
            },
            indent=2,
        )
    )
    node = d / "node-config.json"
    node.write_text(
        json.dumps(
            {
                "auths": {
                    "registry.example.com/team/app/deeper": {
                        "auth": b64("node-deep:unused"),
                    },
                    "registry.example.com/team/app": {
                        "auth": b64(f"node-user:{passwords['node-user']}")
                    },
                }
            }
        )
    )
    return Files(config_json, dockercfg, secret_yaml, secret_json, node, passwords)


def _resolve_all(files: Files, *extra: str) -> Result:
    return pk(
        "creds",
        "resolve",
        IMAGE,
        "--config",
        str(files.config_json),
        "--config",
        str(files.dockercfg),
        "--config",
        str(files.secret_yaml),
        "--config",
        str(files.secret_json),
        *extra,
    )


def test_resolve_in_kubelet_order(files: Files) -> None:
    result = _resolve_all(files, "-o", "json")
    assert result.returncode == 0, result.describe()
    assert result.err == b"", result.describe()
    # Every matching key, longest (byte-wise greatest) first; a key repeated across files
    # ("registry.example.com" and "https://registry.example.com/v1/") keeps file order.
    assert result.json() == {
        "image": IMAGE,
        "repository": "registry.example.com/team/app",
        "found": True,
        "matches": [
            {
                "registry": "registry.example.com/team/app",
                "username": "app-user",
                "email": "app@example.com",
                "source": str(files.secret_json),
            },
            {
                "registry": "https://registry.example.com/team",
                "username": "dcfg-user",
                "email": "d@example.com",
                "source": str(files.dockercfg),
            },
            {
                "registry": "registry.example.com",
                "username": "cfg-user",
                "email": "cfg@example.com",
                "source": str(files.config_json),
            },
            {
                "registry": "https://registry.example.com/v1/",
                "username": "v1-user",
                "email": "",
                "source": str(files.secret_yaml),
            },
            {
                "registry": "*.example.com",
                "username": "glob-user",
                "email": "",
                "source": str(files.secret_yaml),
            },
        ],
    }


def test_resolve_order_depends_on_keys_not_on_file_order(files: Files) -> None:
    forward = _resolve_all(files, "-o", "json").json()["matches"]
    backward = pk_ok(
        "creds",
        "resolve",
        IMAGE,
        "--config",
        str(files.secret_json),
        "--config",
        str(files.secret_yaml),
        "--config",
        str(files.dockercfg),
        "--config",
        str(files.config_json),
        "-o",
        "json",
    ).json()["matches"]
    # Only the two entries under the same key ("registry.example.com") swap.
    assert [m["username"] for m in backward] == [
        "app-user",
        "dcfg-user",
        "v1-user",
        "cfg-user",
        "glob-user",
    ]
    assert sorted(map(json.dumps, forward)) == sorted(map(json.dumps, backward))


def test_resolve_node_config_comes_after_the_pods_secrets(files: Files) -> None:
    result = pk_ok(
        "creds",
        "resolve",
        IMAGE,
        "--config",
        str(files.config_json),
        "--node-config",
        str(files.node),
        "-o",
        "json",
    )
    assert [(m["username"], m["source"]) for m in result.json()["matches"]] == [
        ("cfg-user", str(files.config_json)),
        ("node-user", str(files.node)),
    ]


def test_resolve_warns_about_credential_helpers(tmp_path: Path) -> None:
    """The kubelet never runs docker-credential-* helpers: resolve says so and goes on."""
    config = tmp_path / "config.json"
    config.write_text(
        json.dumps(
            {
                "auths": {"registry.example.com": {"auth": b64("u:helper-pw-Jj9")}},
                "credsStore": "desktop",
            }
        )
    )
    result = pk("creds", "resolve", IMAGE, "--config", str(config), "-o", "json")
    assert result.returncode == 0, result.describe()
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.describe()
    assert lines[0].startswith("warning:")
    assert str(config) in lines[0]
    assert [m["username"] for m in result.json()["matches"]] == ["u"]
    assert "helper-pw-Jj9" not in result.stdout + result.stderr


def test_resolve_docker_hub_fallback(files: Files) -> None:
    result = pk_ok("creds", "resolve", "nginx", "--config", str(files.secret_yaml), "-o", "json")
    assert result.json() == {
        "image": "nginx",
        "repository": "docker.io/library/nginx",
        "found": True,
        "matches": [
            {
                "registry": "https://index.docker.io/v1/",
                "username": "hub-user",
                "email": "",
                "source": str(files.secret_yaml),
            }
        ],
    }


@pytest.mark.parametrize("image", ["quay.io/org/app:v1", "registry.example.com:5000/team/app"])
def test_resolve_nothing_found(files: Files, image: str) -> None:
    result = pk("creds", "resolve", image, "--config", str(files.config_json), "-o", "json")
    assert result.returncode == 0, result.describe()
    got = result.json()
    assert got["found"] is False
    assert got["matches"] == []
    assert got["image"] == image
    text = pk("creds", "resolve", image, "--config", str(files.config_json))
    assert text.returncode == 0, text.describe()
    assert "anonymously" in text.stdout


def test_resolve_text_output(files: Files) -> None:
    result = _resolve_all(files)
    assert result.returncode == 0, result.describe()
    rows = result.stdout.splitlines()
    assert "5 credentials" in result.stdout
    order = [line.split()[2] for line in rows if re.match(r"^\d+\s", line)]
    assert order == ["app-user", "dcfg-user", "cfg-user", "v1-user", "glob-user"]


@pytest.mark.parametrize("image", ["Bad Image", "registry.example.com/Team/app", "nginx:", ""])
def test_resolve_invalid_image(files: Files, image: str) -> None:
    result = pk("creds", "resolve", image, "--config", str(files.config_json), "-o", "json")
    line = assert_one_line_error(result)
    assert result.out == b""
    assert line.startswith("error:")


def test_resolve_reads_config_from_stdin(files: Files) -> None:
    result = pk_ok(
        "creds",
        "resolve",
        IMAGE,
        "--config",
        "-",
        "-o",
        "json",
        stdin=files.secret_json.read_bytes(),
    )
    assert [(m["username"], m["source"]) for m in result.json()["matches"]] == [("app-user", "-")]


def test_decode_reads_stdin(files: Files) -> None:
    result = pk_ok("secret", "decode", "-", "-o", "json", stdin=files.secret_yaml.read_bytes())
    assert result.json() == {
        "type": "kubernetes.io/dockerconfigjson",
        "auths": {
            "*.example.com": {"username": "glob-user", "password": None, "email": ""},
            "https://registry.example.com/v1/": {
                "username": "v1-user",
                "password": None,
                "email": "",
            },
            "https://index.docker.io/v1/": {"username": "hub-user", "password": None, "email": ""},
        },
    }
    text = pk_ok("secret", "decode", "-", stdin=files.secret_json.read_bytes())
    assert text.stdout.splitlines()[0] == "type: kubernetes.io/dockercfg"
    assert "app-user" in text.stdout
    assert "(set)" in text.stdout


def test_decode_every_file_kind(files: Files) -> None:
    expected = {
        files.config_json: ("kubernetes.io/dockerconfigjson", {"registry.example.com"}),
        files.dockercfg: ("kubernetes.io/dockercfg", {"https://registry.example.com/team"}),
        files.secret_json: ("kubernetes.io/dockercfg", {"registry.example.com/team/app"}),
    }
    for path, (type_, keys) in expected.items():
        got = pk_ok("secret", "decode", str(path), "-o", "json").json()
        assert got["type"] == type_, path
        assert set(got["auths"]) == keys, path


# --------------------------------------------------------------------------- secrets stay secret


def _all_secret_forms(files: Files) -> list[str]:
    forms = []
    for user, password in files.passwords.items():
        forms += [password, b64(f"{user}:{password}")]
    return forms


def _assert_no_secret(result: Result, files: Files) -> None:
    everything = result.stdout + result.stderr
    for form in _all_secret_forms(files):
        assert form not in everything, f"{form!r} leaked\n{result.describe()}"


def test_secrets_hidden_by_default(files: Files) -> None:
    paths = [files.config_json, files.dockercfg, files.secret_yaml, files.secret_json]
    # Outputs that must hold neither a password nor a base64 user:password.
    readable = [
        _resolve_all(files),
        _resolve_all(files, "-o", "json"),
        pk("creds", "resolve", "nginx", "--config", str(files.secret_yaml)),
        pk("creds", "resolve", IMAGE, "--config", str(files.config_json), "--node-config",
           str(files.node), "-o", "json"),
    ]  # fmt: skip
    for path in paths:
        readable.append(pk("secret", "decode", str(path)))
        readable.append(pk("secret", "decode", str(path), "-o", "json"))
    # A manifest holds the whole credential file base64-encoded, never a password in plain text.
    manifests = []
    for path in (files.config_json, files.dockercfg):
        manifests.append(pk("secret", "import", str(path)))
        manifests.append(pk("secret", "import", str(path), "-o", "json"))
    for result in readable + manifests:
        assert result.returncode == 0, result.describe()
        everything = result.stdout + result.stderr
        for password in files.passwords.values():
            assert password not in everything, f"{password!r} leaked\n{result.describe()}"
    for result in readable:
        _assert_no_secret(result, files)


def test_show_secrets_reveals_them(files: Files) -> None:
    shown = _resolve_all(files, "-o", "json", "--show-secrets").json()
    assert {m["username"]: m["password"] for m in shown["matches"]} == {
        user: files.passwords[user]
        for user in ("app-user", "dcfg-user", "cfg-user", "v1-user", "glob-user")
    }
    text = _resolve_all(files, "--show-secrets")
    assert text.returncode == 0
    for user in ("app-user", "dcfg-user", "cfg-user", "v1-user", "glob-user"):
        assert files.passwords[user] in text.stdout
    decoded = pk_ok("secret", "decode", str(files.secret_yaml), "--show-secrets", "-o", "json")
    assert decoded.json()["auths"]["*.example.com"]["password"] == files.passwords["glob-user"]
    decoded_text = pk_ok("secret", "decode", str(files.secret_yaml), "--show-secrets")
    assert files.passwords["v1-user"] in decoded_text.stdout


# --------------------------------------------------------------------------- malformed input

CANARY = "Tops3cret-LEAK-canary"


def _secret_doc(type_: str, data: dict[str, str]) -> str:
    return json.dumps(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "x"},
            "type": type_,
            "data": data,
        }
    )


MALFORMED = {
    "bad-base64-in-data.yaml": (
        "apiVersion: v1\nkind: Secret\nmetadata: {name: x}\n"
        "type: kubernetes.io/dockerconfigjson\n"
        f"data:\n  .dockerconfigjson: '{CANARY}!!'\n"
    ),
    "bad-json.json": '{"auths": {"r.example.com": {"username": "u", "password": "' + CANARY + '"}',
    "bad-json-in-payload.yaml": dockerconfigjson_secret_yaml(
        "x", '{"auths":{"r.example.com":{"username":"u","password":"' + CANARY + '"'
    ),
    "auth-not-base64.json": json.dumps({"auths": {"r.example.com": {"auth": f"u:{CANARY}"}}}),
    "auth-without-colon.json": json.dumps({"auths": {"r.example.com": {"auth": b64(CANARY)}}}),
    ".dockercfg": json.dumps({"r.example.com": {"auth": f"u:{CANARY}"}}),
    "auth-not-base64-in-secret.json": _secret_doc(
        "kubernetes.io/dockercfg",
        {".dockercfg": b64(json.dumps({"r.example.com": {"auth": f"u:{CANARY}="}}))},
    ),
    "password-not-a-string.json": json.dumps(
        {"auths": {"r.example.com": {"username": "u", "password": [CANARY]}}}
    ),
    "bad-yaml.yaml": f"kind: Secret\ndata:\n  .dockerconfigjson: {b64(CANARY)}\n bad: [yaml\n",
}


# Secrets the kubelet passes over without an error: a pod naming one pulls as if it named
# nothing.
IGNORED = {
    "type-dockerconfigjson-key-dockercfg.json": _secret_doc(
        "kubernetes.io/dockerconfigjson",
        {".dockercfg": b64(json.dumps({"r.example.com": {"auth": b64(f"u:{CANARY}")}}))},
    ),
    "type-dockercfg-key-dockerconfigjson.yaml": dockerconfigjson_secret_yaml(
        "x",
        json.dumps({"auths": {"r.example.com": {"auth": b64(f"u:{CANARY}")}}}),
        type_="kubernetes.io/dockercfg",
    ),
    "opaque-secret.json": _secret_doc(
        "Opaque",
        {".dockerconfigjson": b64(json.dumps({"auths": {"r.example.com": {"password": CANARY}}}))},
    ),
}


@pytest.fixture(params=sorted(MALFORMED))
def malformed(request: pytest.FixtureRequest, tmp_path: Path) -> Path:
    name: str = request.param
    path = tmp_path / "inputs" / name
    path.parent.mkdir()
    path.write_text(MALFORMED[name])
    return path


@pytest.mark.parametrize(
    "command",
    [
        ("creds", "resolve", "r.example.com/app", "--config", "{}"),
        ("creds", "resolve", "r.example.com/app", "--config", "{}", "-o", "json", "--show-secrets"),
        ("creds", "resolve", "r.example.com/app", "--config", "-", "--node-config", "{}"),
        ("secret", "decode", "{}"),
        ("secret", "decode", "{}", "-o", "json", "--show-secrets"),
        ("secret", "import", "{}"),
    ],
    ids=["resolve", "resolve-json-show", "resolve-node", "decode", "decode-json-show", "import"],
)
def test_malformed_file(malformed: Path, command: tuple[str, ...], files: Files) -> None:
    args = [a.replace("{}", str(malformed)) for a in command]
    stdin = files.config_json.read_bytes() if "-" in args else None
    result = pk(*args, stdin=stdin)
    line = assert_one_line_error(result)
    assert result.out == b"", result.describe()
    assert line.startswith("error: "), result.describe()
    assert str(malformed) in line, f"the error must name the file\n{result.describe()}"
    assert CANARY not in result.stdout + result.stderr, result.describe()
    assert b64(CANARY) not in result.stdout + result.stderr, result.describe()


@pytest.mark.parametrize("name", sorted(IGNORED))
def test_a_secret_the_kubelet_ignores_counts_as_no_credentials(name: str, tmp_path: Path) -> None:
    path = tmp_path / name
    path.write_text(IGNORED[name])
    result = pk("creds", "resolve", "r.example.com/app", "--config", str(path), "-o", "json")
    assert result.returncode == 0, result.describe()
    assert result.json()["found"] is False and result.json()["matches"] == []
    (line,) = result.stderr.splitlines()
    assert line.startswith(f"warning: {path}: ") and "counts as no credentials" in line
    assert ("is not a registry credential" in line) == name.startswith("opaque")
    assert CANARY not in result.stdout + result.stderr
    # Decoding it is still an error: there is nothing to decode.
    decoded = pk("secret", "decode", str(path))
    assert assert_one_line_error(decoded).startswith(f"error: {path}: Secret: ")


def test_malformed_second_config_is_named(files: Files, tmp_path: Path) -> None:
    bad = tmp_path / "second.json"
    bad.write_text(json.dumps({"auths": {"r.example.com": {"auth": f"u:{CANARY}"}}}))
    result = pk("creds", "resolve", IMAGE, "--config", str(files.config_json), "--config", str(bad))
    line = assert_one_line_error(result)
    assert str(bad) in line
    assert str(files.config_json) not in line
    assert CANARY not in result.stderr


def test_missing_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.json"
    for args in (
        ("creds", "resolve", "nginx", "--config", str(missing)),
        ("secret", "decode", str(missing)),
        ("secret", "import", str(missing)),
    ):
        result = pk(*args)
        line = assert_one_line_error(result)
        assert str(missing) in line


def test_serve_refuses_a_bad_setting_in_one_line(tmp_path: Path) -> None:
    result = pk("serve", "--data", str(tmp_path), "--database-url", "mysql://db/x")
    line = assert_one_line_error(result)
    assert "database_url" in line


def test_import_skips_logins_auth_cannot_carry(tmp_path: Path) -> None:
    """Entries of a docker config whose user name a written `auth` field would not give back
    (separate username and password fields allow any) are skipped, the others imported."""
    config = tmp_path / "config.json"
    config.write_text(
        json.dumps(
            {
                "auths": {
                    "good.example.com": {"username": "robot", "password": "pw-good-7Hs"},
                    "colon.example.com": {"username": "ci:bot", "password": CANARY},
                    "newline.example.com": {"username": "ci\nbot", "password": CANARY},
                    "control.example.com": {"auth": b64(f"ci\x1b[2Kbot:{CANARY}")},
                }
            }
        )
    )
    result = pk("secret", "import", str(config), "-o", "json")
    assert result.returncode == 0, result.describe()
    payload = base64.b64decode(result.json()["data"][".dockerconfigjson"])
    assert list(json.loads(payload)["auths"]) == ["good.example.com"]
    lines = result.stderr.splitlines()
    assert lines == [
        "warning: colon.example.com: a registry user name cannot contain ':' (docker splits "
        "the auth field at the first ':', and HTTP basic auth allows none in a user name); "
        "if you pasted user:password, the part after ':' goes in the password; skipped",
        "warning: newline.example.com: a registry user name cannot contain control characters "
        "or line breaks; character 3 is a line feed (\\n): type the user name again on one "
        "line; skipped",
        "warning: control.example.com: a registry user name cannot contain control characters "
        "or line breaks; character 3 is U+001B: type the user name again on one line; skipped",
    ]
    assert CANARY not in result.stdout + result.stderr

    only_bad = tmp_path / "bad.json"
    only_bad.write_text(
        json.dumps({"auths": {"r.example.com": {"username": "a:b", "password": "p"}}})
    )
    line = assert_one_line_error(pk("secret", "import", str(only_bad)), 2)
    assert line == f"error: {only_bad}: no usable registry credentials found"
