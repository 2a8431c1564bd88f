"""Image references, row by row, as distribution/reference v0.6 and go-digest parse them.

Every row names one input and the whole expected result: the domain, path,
tag and digest, the reference's string, its familiar string and familiar
name, or else the exact error text. The expectations come from
distribution/reference's behaviour (its grammar in regexp.go, Parse in
reference.go, ParseNormalizedNamed and splitDockerDomain in normalize.go,
and the inputs of its own test tables) and go-digest's Digest.Validate with
sha256, sha384 and sha512 linked in, as they are in the kubelet.
"""

from __future__ import annotations

from typing import NamedTuple

import pytest

from pullkeeper.core import reference
from pullkeeper.core.reference import InvalidReference, Reference


class Ok(NamedTuple):
    domain: str
    path: str
    tag: str | None
    digest: str | None
    string: str
    familiar_string: str
    familiar_name: str


class Err(NamedTuple):
    message: str


H64 = "f" * 64
D256 = "sha256:" + H64
D384 = "sha384:" + "e" * 96
D512 = "sha512:" + "c" * 128
REDIS = "sha256:dbcc1c35ac38df41fd2f5e4130b32ffdb93ebae8b3dbe638c23575912276fc9c"
BUSYBOX = "sha256:86e0e091d0da6bde2456dbb48306f3956bbeb2eae1b5b9a43045843f69fe4aaa"
HEX_ID = "1a3f5e7d9c1b3a5f7e9d1c3b5a7f9e1d3c5b7a9f1e3d5d7c9b1a3f5e7d9c1b3a"
SONG = "thisisthesongthatneverendsitgoesonandonandonthisisthesongthatnev"
LONG_NS = "this_is_not_a_valid_namespace_because_its_lenth_is_greater_than_255_" * 3
LONG_NS += "this_is_not_a_valid_namespace_because_its_lenth_is_greater_than_255"

FORMAT = "invalid reference format"
UPPER = "repository name must be lowercase"
EMPTY = "repository name must have at least one component"
TOO_LONG = "repository name must not be more than 255 characters"
DIGEST_FORMAT = "invalid checksum digest format"
DIGEST_LENGTH = "invalid checksum digest length"
DIGEST_UNSUPPORTED = "unsupported digest algorithm"


def lower_err(remote: str) -> Err:
    return Err(f"invalid reference format: repository name ({remote}) must be lowercase")


def hex_err(s: str) -> Err:
    return Err(f"invalid repository name ({s}), cannot specify 64-byte hexadecimal strings")


def _id(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else f"{text[:40]}...{text[-12:]}<{len(text)}>"


# The tables keep one row per input, so they are left as written.
# fmt: off

# reference.ParseNormalizedNamed: what docker, containerd and the kubelet accept.
NORMALIZED: list[tuple[str, Ok | Err]] = [
    # Docker Hub defaults: docker.io and library/.
    ("ubuntu", Ok("docker.io", "library/ubuntu", None, None,
                  "docker.io/library/ubuntu", "ubuntu", "ubuntu")),
    ("ubuntu:latest", Ok("docker.io", "library/ubuntu", "latest", None,
                         "docker.io/library/ubuntu:latest", "ubuntu:latest", "ubuntu")),
    ("library/ubuntu", Ok("docker.io", "library/ubuntu", None, None,
                          "docker.io/library/ubuntu", "ubuntu", "ubuntu")),
    ("docker.io/ubuntu", Ok("docker.io", "library/ubuntu", None, None,
                            "docker.io/library/ubuntu", "ubuntu", "ubuntu")),
    ("docker.io/library/ubuntu", Ok("docker.io", "library/ubuntu", None, None,
                                    "docker.io/library/ubuntu", "ubuntu", "ubuntu")),
    ("index.docker.io/ubuntu", Ok("docker.io", "library/ubuntu", None, None,
                                  "docker.io/library/ubuntu", "ubuntu", "ubuntu")),
    ("index.docker.io/library/ubuntu:22.04",
     Ok("docker.io", "library/ubuntu", "22.04", None,
        "docker.io/library/ubuntu:22.04", "ubuntu:22.04", "ubuntu")),
    ("index.docker.io/fooo/bar", Ok("docker.io", "fooo/bar", None, None,
                                    "docker.io/fooo/bar", "fooo/bar", "fooo/bar")),
    ("fooo/bar", Ok("docker.io", "fooo/bar", None, None,
                    "docker.io/fooo/bar", "fooo/bar", "fooo/bar")),
    ("docker/migrator", Ok("docker.io", "docker/migrator", None, None,
                           "docker.io/docker/migrator", "docker/migrator", "docker/migrator")),
    ("other/library", Ok("docker.io", "other/library", None, None,
                         "docker.io/other/library", "other/library", "other/library")),
    ("store/foo/bar", Ok("docker.io", "store/foo/bar", None, None,
                         "docker.io/store/foo/bar", "store/foo/bar", "store/foo/bar")),
    # library/ is only dropped when nothing is nested below it.
    ("library/foo/bar", Ok("docker.io", "library/foo/bar", None, None,
                           "docker.io/library/foo/bar", "library/foo/bar", "library/foo/bar")),
    ("docker.io/library/foo/bar", Ok("docker.io", "library/foo/bar", None, None,
                                     "docker.io/library/foo/bar", "library/foo/bar",
                                     "library/foo/bar")),
    ("ubuntu-12.04-base", Ok("docker.io", "library/ubuntu-12.04-base", None, None,
                             "docker.io/library/ubuntu-12.04-base", "ubuntu-12.04-base",
                             "ubuntu-12.04-base")),
    # Only the exact strings docker.io and index.docker.io are Docker Hub.
    ("docker.io:5000/foo", Ok("docker.io:5000", "foo", None, None,
                              "docker.io:5000/foo", "docker.io:5000/foo", "docker.io:5000/foo")),
    ("index.docker.io:443/foo", Ok("index.docker.io:443", "foo", None, None,
                                   "index.docker.io:443/foo", "index.docker.io:443/foo",
                                   "index.docker.io:443/foo")),
    ("DOCKER.IO/foo", Ok("DOCKER.IO", "foo", None, None,
                         "DOCKER.IO/foo", "DOCKER.IO/foo", "DOCKER.IO/foo")),
    # localhost is always a domain, but only before a '/'.
    ("localhost/foo", Ok("localhost", "foo", None, None,
                         "localhost/foo", "localhost/foo", "localhost/foo")),
    ("localhost/library/foo", Ok("localhost", "library/foo", None, None,
                                 "localhost/library/foo", "localhost/library/foo",
                                 "localhost/library/foo")),
    ("localhost:5000/foo/bar:v1", Ok("localhost:5000", "foo/bar", "v1", None,
                                     "localhost:5000/foo/bar:v1", "localhost:5000/foo/bar:v1",
                                     "localhost:5000/foo/bar")),
    ("localhost", Ok("docker.io", "library/localhost", None, None,
                     "docker.io/library/localhost", "localhost", "localhost")),
    ("localhost:5000", Ok("docker.io", "library/localhost", "5000", None,
                          "docker.io/library/localhost:5000", "localhost:5000", "localhost")),
    ("LOCALHOST/foo", Ok("LOCALHOST", "foo", None, None,
                         "LOCALHOST/foo", "LOCALHOST/foo", "LOCALHOST/foo")),
    # A first component with '.' or ':' is a domain; alone it is an image name.
    ("example.com", Ok("docker.io", "library/example.com", None, None,
                       "docker.io/library/example.com", "example.com", "example.com")),
    ("example.com/foo", Ok("example.com", "foo", None, None,
                           "example.com/foo", "example.com/foo", "example.com/foo")),
    ("example.com:8000/private/moonbase",
     Ok("example.com:8000", "private/moonbase", None, None,
        "example.com:8000/private/moonbase", "example.com:8000/private/moonbase",
        "example.com:8000/private/moonbase")),
    ("example.com:0/x", Ok("example.com:0", "x", None, None,
                           "example.com:0/x", "example.com:0/x", "example.com:0/x")),
    ("example.com:99999999/x", Ok("example.com:99999999", "x", None, None,
                                  "example.com:99999999/x", "example.com:99999999/x",
                                  "example.com:99999999/x")),
    ("test-com:8080/foo", Ok("test-com:8080", "foo", None, None,
                             "test-com:8080/foo", "test-com:8080/foo", "test-com:8080/foo")),
    ("a:5000/b", Ok("a:5000", "b", None, None, "a:5000/b", "a:5000/b", "a:5000/b")),
    ("xn--n3h.com:18080/foo", Ok("xn--n3h.com:18080", "foo", None, None,
                                 "xn--n3h.com:18080/foo", "xn--n3h.com:18080/foo",
                                 "xn--n3h.com:18080/foo")),
    ("b.gcr.io/test.example.com/my-app:test.example.com",
     Ok("b.gcr.io", "test.example.com/my-app", "test.example.com", None,
        "b.gcr.io/test.example.com/my-app:test.example.com",
        "b.gcr.io/test.example.com/my-app:test.example.com",
        "b.gcr.io/test.example.com/my-app")),
    ("sub-dom1.foo.com/bar/baz/quux:some-long-tag",
     Ok("sub-dom1.foo.com", "bar/baz/quux", "some-long-tag", None,
        "sub-dom1.foo.com/bar/baz/quux:some-long-tag",
        "sub-dom1.foo.com/bar/baz/quux:some-long-tag", "sub-dom1.foo.com/bar/baz/quux")),
    ("foo_bar.com:8080", Ok("docker.io", "library/foo_bar.com", "8080", None,
                            "docker.io/library/foo_bar.com:8080", "foo_bar.com:8080",
                            "foo_bar.com")),
    # IPv4, and IPv6 in brackets with and without a port.
    ("127.0.0.1:8000/privatebase", Ok("127.0.0.1:8000", "privatebase", None, None,
                                      "127.0.0.1:8000/privatebase", "127.0.0.1:8000/privatebase",
                                      "127.0.0.1:8000/privatebase")),
    ("192.168.0.1", Ok("docker.io", "library/192.168.0.1", None, None,
                       "docker.io/library/192.168.0.1", "192.168.0.1", "192.168.0.1")),
    ("192.168.0.1:80", Ok("docker.io", "library/192.168.0.1", "80", None,
                          "docker.io/library/192.168.0.1:80", "192.168.0.1:80", "192.168.0.1")),
    ("192.168.0.1:8/debian", Ok("192.168.0.1:8", "debian", None, None,
                                "192.168.0.1:8/debian", "192.168.0.1:8/debian",
                                "192.168.0.1:8/debian")),
    ("[fc00::1]:5000/docker", Ok("[fc00::1]:5000", "docker", None, None,
                                 "[fc00::1]:5000/docker", "[fc00::1]:5000/docker",
                                 "[fc00::1]:5000/docker")),
    ("[fc00:1:2:3:4:5:6:7]:5000/library/debian",
     Ok("[fc00:1:2:3:4:5:6:7]:5000", "library/debian", None, None,
        "[fc00:1:2:3:4:5:6:7]:5000/library/debian", "[fc00:1:2:3:4:5:6:7]:5000/library/debian",
        "[fc00:1:2:3:4:5:6:7]:5000/library/debian")),
    ("[2001:db8::1]/repo", Ok("[2001:db8::1]", "repo", None, None,
                              "[2001:db8::1]/repo", "[2001:db8::1]/repo", "[2001:db8::1]/repo")),
    ("[::1]:5000/repo:tag@" + D256,
     Ok("[::1]:5000", "repo", "tag", D256, "[::1]:5000/repo:tag@" + D256,
        "[::1]:5000/repo:tag@" + D256, "[::1]:5000/repo")),
    ("[FC00::AB]/x", Ok("[FC00::AB]", "x", None, None,
                        "[FC00::AB]/x", "[FC00::AB]/x", "[FC00::AB]/x")),
    # An uppercase first component is taken for a domain.
    ("Foo/bar", Ok("Foo", "bar", None, None, "Foo/bar", "Foo/bar", "Foo/bar")),
    ("FOO/bar", Ok("FOO", "bar", None, None, "FOO/bar", "FOO/bar", "FOO/bar")),
    ("Docker/docker", Ok("Docker", "docker", None, None,
                         "Docker/docker", "Docker/docker", "Docker/docker")),
    # A "domain" that the grammar refuses leaves the whole name as the path.
    ("a_b.com/x", Ok("", "a_b.com/x", None, None, "a_b.com/x", "a_b.com/x", "a_b.com/x")),
    ("a.b_c-d/e", Ok("", "a.b_c-d/e", None, None, "a.b_c-d/e", "a.b_c-d/e", "a.b_c-d/e")),
    ("test_com/foo", Ok("docker.io", "test_com/foo", None, None,
                        "docker.io/test_com/foo", "test_com/foo", "test_com/foo")),
    # Separators: '.', '_', '__' and any run of '-'.
    ("docker---rules/docker", Ok("docker.io", "docker---rules/docker", None, None,
                                 "docker.io/docker---rules/docker", "docker---rules/docker",
                                 "docker---rules/docker")),
    ("dock__er/docker", Ok("docker.io", "dock__er/docker", None, None,
                           "docker.io/dock__er/docker", "dock__er/docker", "dock__er/docker")),
    ("a_b-c/d.e__f--g", Ok("docker.io", "a_b-c/d.e__f--g", None, None,
                           "docker.io/a_b-c/d.e__f--g", "a_b-c/d.e__f--g", "a_b-c/d.e__f--g")),
    ("d/docker", Ok("docker.io", "d/docker", None, None,
                    "docker.io/d/docker", "d/docker", "d/docker")),
    ("jess/t", Ok("docker.io", "jess/t", None, None, "docker.io/jess/t", "jess/t", "jess/t")),
    ("0/1", Ok("docker.io", "0/1", None, None, "docker.io/0/1", "0/1", "0/1")),
    # Tags: \w then up to 127 of [\w.-]; case is kept.
    ("foo:" + "a" * 128, Ok("docker.io", "library/foo", "a" * 128, None,
                            "docker.io/library/foo:" + "a" * 128, "foo:" + "a" * 128, "foo")),
    ("foo:TAG", Ok("docker.io", "library/foo", "TAG", None,
                   "docker.io/library/foo:TAG", "foo:TAG", "foo")),
    ("foo:_", Ok("docker.io", "library/foo", "_", None,
                 "docker.io/library/foo:_", "foo:_", "foo")),
    ("foo:v1.0-rc_1", Ok("docker.io", "library/foo", "v1.0-rc_1", None,
                         "docker.io/library/foo:v1.0-rc_1", "foo:v1.0-rc_1", "foo")),
    # Digests, alone and with a tag.
    ("redis@" + REDIS, Ok("docker.io", "library/redis", None, REDIS,
                          "docker.io/library/redis@" + REDIS, "redis@" + REDIS, "redis")),
    ("busybox:latest@" + BUSYBOX,
     Ok("docker.io", "library/busybox", "latest", BUSYBOX,
        "docker.io/library/busybox:latest@" + BUSYBOX, "busybox:latest@" + BUSYBOX, "busybox")),
    ("dmcgowan/myapp@" + REDIS, Ok("docker.io", "dmcgowan/myapp", None, REDIS,
                                   "docker.io/dmcgowan/myapp@" + REDIS,
                                   "dmcgowan/myapp@" + REDIS, "dmcgowan/myapp")),
    ("quay.io/a/b@" + D384, Ok("quay.io", "a/b", None, D384, "quay.io/a/b@" + D384,
                               "quay.io/a/b@" + D384, "quay.io/a/b")),
    ("xn--7o8h.com/myimage:xn--7o8h.com@" + D512,
     Ok("xn--7o8h.com", "myimage", "xn--7o8h.com", D512,
        "xn--7o8h.com/myimage:xn--7o8h.com@" + D512,
        "xn--7o8h.com/myimage:xn--7o8h.com@" + D512, "xn--7o8h.com/myimage")),
    # 64 hex characters are refused only as the whole input.
    ("docker.io/" + HEX_ID, Ok("docker.io", "library/" + HEX_ID, None, None,
                               "docker.io/library/" + HEX_ID, HEX_ID, HEX_ID)),
    (HEX_ID + ":tag", Ok("docker.io", "library/" + HEX_ID, "tag", None,
                         "docker.io/library/" + HEX_ID + ":tag", HEX_ID + ":tag", HEX_ID)),
    (REDIS[7:-1], Ok("docker.io", "library/" + REDIS[7:-1], None, None,
                     "docker.io/library/" + REDIS[7:-1], REDIS[7:-1], REDIS[7:-1])),
    (SONG, Ok("docker.io", "library/" + SONG, None, None,
              "docker.io/library/" + SONG, SONG, SONG)),
    # The 255 limit is on the path: the domain is not counted, library/ is.
    ("example.com/" + "a" * 255, Ok("example.com", "a" * 255, None, None,
                                    "example.com/" + "a" * 255, "example.com/" + "a" * 255,
                                    "example.com/" + "a" * 255)),
    ("a" * 247, Ok("docker.io", "library/" + "a" * 247, None, None,
                   "docker.io/library/" + "a" * 247, "a" * 247, "a" * 247)),
    # ---- refused ----
    ("", Err(FORMAT)),
    ("https://github.com/docker/docker", Err(FORMAT)),
    ("-docker", Err(FORMAT)),
    ("-docker/docker", Err(FORMAT)),
    ("docker-/docker", Err(FORMAT)),
    ("-docker-/docker", Err(FORMAT)),
    ("-docker.io/docker/docker", Err(FORMAT)),
    ("____/____", Err(FORMAT)),
    ("_docker/_docker", Err(FORMAT)),
    ("dock___er/docker", Err(FORMAT)),
    ("dock..er/docker", Err(FORMAT)),
    ("dock_.er/docker", Err(FORMAT)),
    ("dock-.er/docker", Err(FORMAT)),
    ("docker/", Err(FORMAT)),
    ("/foo", Err(FORMAT)),
    ("docker///docker", Err(FORMAT)),
    ("docker.io/docker///docker", Err(FORMAT)),
    (":justtag", Err(FORMAT)),
    ("@" + D256, Err(FORMAT)),
    (" foo", Err(FORMAT)),
    ("foo\n", Err(FORMAT)),
    ("localhost:/foo", Err(FORMAT)),
    ("example.com:port/foo", Err(FORMAT)),
    ("[fc00::1]", Err(FORMAT)),
    ("[fc00::1]:5000", Err(FORMAT)),
    ("fc00::1:5000/debian", Err(FORMAT)),
    ("[fe80::1%eth0]:5000/debian", Err(FORMAT)),
    ("[2001:db8:3:4::192.0.2.33]:5000/debian", Err(FORMAT)),
    ("foo:" + "a" * 129, Err(FORMAT)),
    ("foo:-tag", Err(FORMAT)),
    ("foo:.tag", Err(FORMAT)),
    ("foo:tag:tag", Err(FORMAT)),
    ("foo:tagé", Err(FORMAT)),
    ("café/x", Err(FORMAT)),
    ("É/foo", Err(FORMAT)),
    ("foo@sha256:" + "f" * 31, Err(FORMAT)),
    ("foo@sha256:" + H64 + "@", Err(FORMAT)),
    # Uppercase in the repository name, reported with the name.
    ("docker/Docker", lower_err("docker/Docker")),
    ("docker.io/docker/Docker", lower_err("docker/Docker")),
    ("Uppercase:tag", lower_err("library/Uppercase")),
    ("FOO", lower_err("library/FOO")),
    ("test:5000/Uppercase/lowercase:tag", lower_err("Uppercase/lowercase")),
    ("localhost/Foo", lower_err("Foo")),
    ("foo/É", lower_err("foo/É")),
    ("x/\u212a", lower_err("x/\u212a")),
    (HEX_ID.upper(), lower_err("library/" + HEX_ID.upper())),
    # A byte that is not UTF-8 (a surrogate escape here) is never lowercase to Go.
    ("\udcff", lower_err("library/\udcff")),
    ("foo/\udcff", lower_err("foo/\udcff")),
    ("\udcff/foo", Err(FORMAT)),
    # The remote name is cut at the first ':', so a digest algorithm counts.
    ("foo@SHA256:" + H64, lower_err("library/foo@SHA256")),
    # An uppercase "domain" that Parse cannot take: Parse's own message.
    ("Za_9/b-0b", Err(UPPER)),
    # Whole-input 64-byte hexadecimal identifiers.
    (HEX_ID, hex_err(HEX_ID)),
    (H64, hex_err(H64)),
    # The path limit.
    ("a" * 248, Err(TOO_LONG)),
    ("example.com/" + "a" * 256, Err(TOO_LONG)),
    (LONG_NS + "/docker", Err(TOO_LONG)),
    # Digests checked by go-digest.
    ("foo@sha256:" + "f" * 63, Err(DIGEST_LENGTH)),
    ("repo@sha256:" + "f" * 34, Err(DIGEST_LENGTH)),
    ("foo@sha384:" + H64, Err(DIGEST_LENGTH)),
    ("foo@sha256:" + "F" * 64, Err(DIGEST_FORMAT)),
    ("foo:tag@sha256:" + "0" * 63 + "A", Err(DIGEST_FORMAT)),
    ("foo@md5:" + "f" * 32, Err(DIGEST_UNSUPPORTED)),
    ("foo@sha256+b64:" + H64, Err(DIGEST_UNSUPPORTED)),
    ("validname@invaliddigest:" + H64, Err(DIGEST_UNSUPPORTED)),
]


# reference.Parse: the grammar alone, no Docker Hub normalization.
PARSE: list[tuple[str, Ok | Err]] = [
    ("test_com", Ok("", "test_com", None, None, "test_com", "test_com", "test_com")),
    ("test.com:tag", Ok("", "test.com", "tag", None, "test.com:tag", "test.com:tag", "test.com")),
    ("test.com:5000", Ok("", "test.com", "5000", None,
                         "test.com:5000", "test.com:5000", "test.com")),
    ("test.com/repo:tag", Ok("test.com", "repo", "tag", None,
                             "test.com/repo:tag", "test.com/repo:tag", "test.com/repo")),
    ("test:5000/repo", Ok("test:5000", "repo", None, None,
                          "test:5000/repo", "test:5000/repo", "test:5000/repo")),
    ("test:5000/repo:tag", Ok("test:5000", "repo", "tag", None,
                              "test:5000/repo:tag", "test:5000/repo:tag", "test:5000/repo")),
    ("test:5000/repo@" + D256, Ok("test:5000", "repo", None, D256, "test:5000/repo@" + D256,
                                  "test:5000/repo@" + D256, "test:5000/repo")),
    ("test:5000/repo:tag@" + D256,
     Ok("test:5000", "repo", "tag", D256, "test:5000/repo:tag@" + D256,
        "test:5000/repo:tag@" + D256, "test:5000/repo")),
    ("lowercase:Uppercase", Ok("", "lowercase", "Uppercase", None,
                               "lowercase:Uppercase", "lowercase:Uppercase", "lowercase")),
    # Any first component the domain grammar accepts is a domain to Parse.
    ("library/ubuntu", Ok("library", "ubuntu", None, None,
                          "library/ubuntu", "library/ubuntu", "library/ubuntu")),
    ("a-b/c", Ok("a-b", "c", None, None, "a-b/c", "a-b/c", "a-b/c")),
    ("a--b/c", Ok("a--b", "c", None, None, "a--b/c", "a--b/c", "a--b/c")),
    ("9/9", Ok("9", "9", None, None, "9/9", "9/9", "9/9")),
    ("foo/foo_bar.com:8080", Ok("foo", "foo_bar.com", "8080", None,
                                "foo/foo_bar.com:8080", "foo/foo_bar.com:8080",
                                "foo/foo_bar.com")),
    ("Uppercase/lowercase:tag", Ok("Uppercase", "lowercase", "tag", None,
                                   "Uppercase/lowercase:tag", "Uppercase/lowercase:tag",
                                   "Uppercase/lowercase")),
    ("Foo/bar", Ok("Foo", "bar", None, None, "Foo/bar", "Foo/bar", "Foo/bar")),
    # ... and one it refuses leaves an empty domain.
    ("a_b.com/x", Ok("", "a_b.com/x", None, None, "a_b.com/x", "a_b.com/x", "a_b.com/x")),
    ("test_com/foo", Ok("", "test_com/foo", None, None,
                        "test_com/foo", "test_com/foo", "test_com/foo")),
    ("a.b_c/d", Ok("", "a.b_c/d", None, None, "a.b_c/d", "a.b_c/d", "a.b_c/d")),
    ("foo_bar.com:8080", Ok("", "foo_bar.com", "8080", None,
                            "foo_bar.com:8080", "foo_bar.com:8080", "foo_bar.com")),
    # Docker Hub is not special to Parse, but familiar forms drop it.
    ("docker.io/library/ubuntu", Ok("docker.io", "library/ubuntu", None, None,
                                    "docker.io/library/ubuntu", "ubuntu", "ubuntu")),
    ("docker.io/ubuntu", Ok("docker.io", "ubuntu", None, None,
                            "docker.io/ubuntu", "ubuntu", "ubuntu")),
    ("docker.io/library/foo/bar:1", Ok("docker.io", "library/foo/bar", "1", None,
                                       "docker.io/library/foo/bar:1", "library/foo/bar:1",
                                       "library/foo/bar")),
    ("index.docker.io/library/ubuntu", Ok("index.docker.io", "library/ubuntu", None, None,
                                          "index.docker.io/library/ubuntu",
                                          "index.docker.io/library/ubuntu",
                                          "index.docker.io/library/ubuntu")),
    ("localhost:5000/foo", Ok("localhost:5000", "foo", None, None,
                              "localhost:5000/foo", "localhost:5000/foo", "localhost:5000/foo")),
    ("sub-dom1.foo.com/bar/baz/quux", Ok("sub-dom1.foo.com", "bar/baz/quux", None, None,
                                         "sub-dom1.foo.com/bar/baz/quux",
                                         "sub-dom1.foo.com/bar/baz/quux",
                                         "sub-dom1.foo.com/bar/baz/quux")),
    ("xn--n3h.com/myimage:xn--n3h.com", Ok("xn--n3h.com", "myimage", "xn--n3h.com", None,
                                           "xn--n3h.com/myimage:xn--n3h.com",
                                           "xn--n3h.com/myimage:xn--n3h.com",
                                           "xn--n3h.com/myimage")),
    ("192.168.1.1", Ok("", "192.168.1.1", None, None,
                       "192.168.1.1", "192.168.1.1", "192.168.1.1")),
    ("192.168.1.1:tag", Ok("", "192.168.1.1", "tag", None,
                           "192.168.1.1:tag", "192.168.1.1:tag", "192.168.1.1")),
    ("192.168.1.1:5000", Ok("", "192.168.1.1", "5000", None,
                            "192.168.1.1:5000", "192.168.1.1:5000", "192.168.1.1")),
    ("192.168.1.1/repo", Ok("192.168.1.1", "repo", None, None,
                            "192.168.1.1/repo", "192.168.1.1/repo", "192.168.1.1/repo")),
    ("192.168.1.1:5000/repo:5050", Ok("192.168.1.1:5000", "repo", "5050", None,
                                      "192.168.1.1:5000/repo:5050",
                                      "192.168.1.1:5000/repo:5050", "192.168.1.1:5000/repo")),
    ("[2001:db8::1]/repo", Ok("[2001:db8::1]", "repo", None, None,
                              "[2001:db8::1]/repo", "[2001:db8::1]/repo", "[2001:db8::1]/repo")),
    ("[2001:db8:1:2:3:4:5:6]/repo:tag", Ok("[2001:db8:1:2:3:4:5:6]", "repo", "tag", None,
                                           "[2001:db8:1:2:3:4:5:6]/repo:tag",
                                           "[2001:db8:1:2:3:4:5:6]/repo:tag",
                                           "[2001:db8:1:2:3:4:5:6]/repo")),
    ("[2001:db8::1]:5000/repo@" + D256,
     Ok("[2001:db8::1]:5000", "repo", None, D256, "[2001:db8::1]:5000/repo@" + D256,
        "[2001:db8::1]:5000/repo@" + D256, "[2001:db8::1]:5000/repo")),
    ("[2001:db8::]:5000/repo", Ok("[2001:db8::]:5000", "repo", None, None,
                                  "[2001:db8::]:5000/repo", "[2001:db8::]:5000/repo",
                                  "[2001:db8::]:5000/repo")),
    ("[::1]:5000/repo", Ok("[::1]:5000", "repo", None, None,
                           "[::1]:5000/repo", "[::1]:5000/repo", "[::1]:5000/repo")),
    # "sha256" followed by 64 hex characters is a name and a tag.
    (D256, Ok("", "sha256", H64, None, D256, D256, "sha256")),
    ("a/" * 127 + "a:tag-puts-this-over-max",
     Ok("a", "a/" * 126 + "a", "tag-puts-this-over-max", None,
        "a/" * 127 + "a:tag-puts-this-over-max", "a/" * 127 + "a:tag-puts-this-over-max",
        "a/" * 127 + "a")),
    # The 255 limit is on the path only.
    ("a/" * 128 + "a", Ok("a", "a/" * 127 + "a", None, None,
                          "a/" * 128 + "a", "a/" * 128 + "a", "a/" * 128 + "a")),
    ("a" * 255, Ok("", "a" * 255, None, None, "a" * 255, "a" * 255, "a" * 255)),
    ("x" * 300 + ".com/" + "a" * 255, Ok("x" * 300 + ".com", "a" * 255, None, None,
                                         "x" * 300 + ".com/" + "a" * 255,
                                         "x" * 300 + ".com/" + "a" * 255,
                                         "x" * 300 + ".com/" + "a" * 255)),
    # ---- refused ----
    ("", Err(EMPTY)),
    (":justtag", Err(FORMAT)),
    ("@" + D256, Err(FORMAT)),
    ("aa/asdf$$^/aa", Err(FORMAT)),
    ("[2001:db8::1]", Err(FORMAT)),
    ("[2001:db8::1]:5000", Err(FORMAT)),
    ("[2001:db8::1]:tag", Err(FORMAT)),
    ("[fe80::1%eth0]:5000/repo", Err(FORMAT)),
    ("[fe80::1%@invalidzone]:5000/repo", Err(FORMAT)),
    ("[::ffff:192.168.0.1]/repo", Err(FORMAT)),
    ("2001:db8::1/repo", Err(FORMAT)),
    ("[]/repo", Err(FORMAT)),
    ("[::1]:/repo", Err(FORMAT)),
    ("foo/", Err(FORMAT)),
    ("foo//bar", Err(FORMAT)),
    ("-foo", Err(FORMAT)),
    ("foo-", Err(FORMAT)),
    ("foo___bar", Err(FORMAT)),
    ("é", Err(FORMAT)),
    ("É", Err(FORMAT)),
    ("\udcff", Err(FORMAT)),
    ("foo\n", Err(FORMAT)),
    ("foo:tag\n", Err(FORMAT)),
    ("foo@sha256:" + "f" * 31, Err(FORMAT)),
    ("FOO@sha256:" + "f" * 31, Err(FORMAT)),
    # Uppercase outside a domain: the input would parse once lowercased.
    ("Uppercase:tag", Err(UPPER)),
    ("test:5000/Uppercase/lowercase:tag", Err(UPPER)),
    ("FOO", Err(UPPER)),
    ("foo/Bar", Err(UPPER)),
    ("Foo/Bar", Err(UPPER)),
    ("FOO:tag@sha256:" + "F" * 64, Err(UPPER)),
    ("\u212a", Err(UPPER)),
    ("\u0130", Err(UPPER)),
    # The path limit.
    ("a/" * 129 + "a", Err(TOO_LONG)),
    ("a" * 256, Err(TOO_LONG)),
    ("example.com/" + "a" * 256 + ":tag", Err(TOO_LONG)),
    # Digests, checked by go-digest after the grammar.
    ("repo@sha256:" + "f" * 34, Err(DIGEST_LENGTH)),
    ("foo@sha512:" + H64, Err(DIGEST_LENGTH)),
    ("foo@sha256:" + "f" * 65, Err(DIGEST_LENGTH)),
    ("foo@sha256:" + "F" * 64, Err(DIGEST_FORMAT)),
    ("foo@SHA256:" + H64, Err(DIGEST_FORMAT)),
    ("foo@Md5:" + "f" * 32, Err(DIGEST_FORMAT)),
    ("validname@invaliddigest:" + H64, Err(DIGEST_UNSUPPORTED)),
    ("foo@md5:" + "f" * 32, Err(DIGEST_UNSUPPORTED)),
    ("foo@sha256.x_y+z-w:" + "F" * 40, Err(DIGEST_UNSUPPORTED)),
]


# go-digest Digest.Validate (sha256, sha384 and sha512 available).
DIGESTS: list[tuple[str, str | None]] = [
    (D256, None),
    (D384, None),
    (D512, None),
    (REDIS, None),
    ("sha256:" + "f" * 63, DIGEST_LENGTH),
    ("sha256:" + "f" * 65, DIGEST_LENGTH),
    ("sha512:" + H64, DIGEST_LENGTH),
    ("sha384:" + "e" * 128, DIGEST_LENGTH),
    ("sha256:" + H64 + ":", DIGEST_LENGTH),
    ("sha256::" + "f" * 63, DIGEST_FORMAT),
    ("sha256:" + "F" * 64, DIGEST_FORMAT),
    ("sha256:" + "g" * 64, DIGEST_FORMAT),
    ("sha256:" + "f" * 63 + " ", DIGEST_FORMAT),
    # Go measures the encoded part in bytes: 32 two-byte runes are 64.
    ("sha256:" + "é" * 32, DIGEST_FORMAT),
    ("sha256:" + "é" * 64, DIGEST_LENGTH),
    # 64 bytes that are not UTF-8, carried as surrogate escapes.
    ("sha256:" + "\udcff" * 64, DIGEST_FORMAT),
    ("SHA256:" + H64, DIGEST_FORMAT),
    ("md5:" + "f" * 32, DIGEST_UNSUPPORTED),
    ("sha1:abc", DIGEST_UNSUPPORTED),
    ("sha256+b64:YWJj", DIGEST_UNSUPPORTED),
    ("a.b:c", DIGEST_UNSUPPORTED),
    ("foo:YWJj==", DIGEST_UNSUPPORTED),
    ("foo:a_b-c", DIGEST_UNSUPPORTED),
    ("a..b:c", DIGEST_FORMAT),
    ("-a:c", DIGEST_FORMAT),
    ("foo:bar!", DIGEST_FORMAT),
    ("foo:", DIGEST_FORMAT),
    (":" + H64, DIGEST_FORMAT),
    ("sha256:", DIGEST_FORMAT),
    ("sha256", DIGEST_FORMAT),
    ("", DIGEST_FORMAT),
]

# fmt: on


def _check(result: Reference, want: Ok) -> None:
    got = Ok(
        result.domain,
        result.path,
        result.tag,
        result.digest,
        str(result),
        result.familiar_string,
        result.familiar_name,
    )
    assert got == want
    assert isinstance(result, Reference)
    assert result.name == (f"{want.domain}/{want.path}" if want.domain else want.path)


@pytest.mark.parametrize(("text", "want"), NORMALIZED, ids=_id)
def test_parse_normalized_named(text: str, want: Ok | Err) -> None:
    if isinstance(want, Err):
        with pytest.raises(InvalidReference) as e:
            reference.parse_normalized_named(text)
        assert str(e.value) == want.message
    else:
        _check(reference.parse_normalized_named(text), want)


@pytest.mark.parametrize(("text", "want"), PARSE, ids=_id)
def test_parse(text: str, want: Ok | Err) -> None:
    if isinstance(want, Err):
        with pytest.raises(InvalidReference) as e:
            reference.parse(text)
        assert str(e.value) == want.message
    else:
        _check(reference.parse(text), want)


@pytest.mark.parametrize(("digest", "message"), DIGESTS, ids=_id)
def test_validate_digest(digest: str, message: str | None) -> None:
    if message is None:
        reference.validate_digest(digest)  # raises nothing
    else:
        with pytest.raises(InvalidReference) as e:
            reference.validate_digest(digest)
        assert str(e.value) == message


def test_tables_have_no_duplicate_inputs() -> None:
    for table in (NORMALIZED, PARSE, DIGESTS):
        inputs = [row[0] for row in table]
        assert len(inputs) == len(set(inputs))


@pytest.mark.parametrize(
    ("text", "want"),
    [(text, want) for text, want in NORMALIZED if isinstance(want, Ok)],
    ids=_id,
)
def test_normalized_string_is_canonical(text: str, want: Ok) -> None:
    # ParseNamed's rule: a normalized reference's string parses back to itself,
    # and so does its familiar string, unless that is a bare 64-hex identifier.
    assert str(reference.parse_normalized_named(want.string)) == want.string
    if want.familiar_string == HEX_ID:
        with pytest.raises(InvalidReference, match="64-byte hexadecimal"):
            reference.parse_normalized_named(want.familiar_string)
    else:
        assert str(reference.parse_normalized_named(want.familiar_string)) == want.string
