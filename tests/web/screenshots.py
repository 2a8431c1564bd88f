"""The web UI's screenshots in docs/, taken from a real `pullkeeper serve` with example data.

`scripts/screenshots [--out DIR]` runs this: it starts a server on a temporary directory
(tests/web/conftest.py's site, with the example registries below), attaches a fake
Kubernetes API server (tests/kube/fake_apiserver.py, whose simulated kubelet pulls every
image) as cluster prod, and drives headless Chromium over SHOTS. Each page must answer 200,
or nothing more is taken and the run fails. Clock text is replaced by one fixed time and the
viewport is fixed, so a run over unchanged pages gives the same pictures.

A new page to show is one more Shot in SHOTS; its file name is what docs/*.md link to.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DOCS = Path(__file__).resolve().parents[2] / "docs"
# A page is complete when this shows, for pages that fill in after loading.
ROLLOUT_DONE = "#rollout:not([hx-trigger]) .rollout-state .badge"


@dataclass(frozen=True)
class Shot:
    file: str  # the PNG's name in the output directory (docs/ by default)
    path: str  # the page's address
    user: str = "admin"  # who is logged in (conftest.PASSWORDS, or the first-start admin)
    width: int = 1280  # the viewport's width; its height is 900
    full_page: bool = False  # the whole page, not only the first 900 pixels
    ready: str = "main h1"  # a selector that shows once the page is complete


SHOTS: list[Shot] = [
    Shot("web-registries.png", "/credentials?cluster=prod"),
    Shot("web-create-registry.png", "/credentials/new?provider=quay"),
    Shot(
        "web-workload-status.png",
        "/workloads/prod/shop/web",
        user="bob",
        full_page=True,
        ready=ROLLOUT_DONE,
    ),
    Shot("web-registries-phone.png", "/credentials?cluster=prod", width=390),
    Shot("web-user.png", "/users/alice", full_page=True),
    Shot("web-cluster.png", "/clusters/prod", full_page=True),
    Shot("web-workloads.png", "/workloads?cluster=prod", user="bob"),
]

# Example registries: (name, scope, project or namespace, provider, address, active).
REGISTRIES = [
    ("quay-team-a", "project", "team-a", "quay", None, True),
    ("ghcr-ci", "namespace", "a-web", "ghcr", None, True),
    ("hub-mirror", "cluster", None, "dockerhub", None, True),
    ("harbor-internal", "project", "team-b", "custom", "harbor.example.com", True),
    ("harbor-old", "project", "team-b", "custom", "harbor.example.com", False),
    ("nexus-builds", "namespace", "b-web", "custom", "nexus.example.com:8443", True),
    ("quay-shop", "project", "web", "custom", "registry.example.com", True),
]
# Clock text as the pages write it (render.py's `when`, the rollout's event times).
CLOCK = r"\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}(:\d{2})?( UTC)?"
FIXED_TIME = "2026-01-05 09:30 UTC"
_UNCLOCK = """([pattern, fixed]) => {
  const re = new RegExp(pattern, "g");
  const walk = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let n = walk.nextNode(); n; n = walk.nextNode()) {
    n.nodeValue = n.nodeValue.replace(re, fixed);
  }
}"""


def _example_data(site: Any, fake: Any, base: Path) -> None:
    """Cluster prod on the fake API server, project web with namespace shop, the registries
    above, and Deployment web in shop, pulled and ready."""
    from tests.web.conftest import _ok
    from tests.workloads.conftest import PROJECT_LABEL, eventually

    api = site.api
    for ns, project in (("a-web", "team-a"), ("a-api", "team-a"), ("b-web", "team-b")):
        fake.create("namespaces", {"metadata": {"name": ns, "labels": {PROJECT_LABEL: project}}})
    fake.create("namespaces", {"metadata": {"name": "shop", "labels": {PROJECT_LABEL: "web"}}})
    _ok(api.patch("/clusters/prod", json={"kubeconfig": str(fake.kubeconfig(base / "kube"))}))
    web = _ok(api.post("/projects", json={"name": "web", "cluster": "prod"}))
    _ok(api.put("/clusters/prod/namespaces/shop", json={"project": web["id"]}))
    _ok(api.put(f"/projects/{web['id']}/members/bob", json={"role": "member"}))
    projects = {**site.projects, "web": web["id"]}
    for name, scope, where, provider, server, active in REGISTRIES:
        body: dict[str, Any] = {
            "name": name,
            "cluster": "prod",
            "scope": scope,
            "provider": provider,
            "username": "robot",
            "password": f"example-{name}-password",  # example data, shown nowhere
        }
        if scope == "project":
            body["project"] = projects[str(where)]
        elif scope == "namespace":
            body["namespace"] = where
        if server:
            body["server"] = server
        made = site.create_credential(**body)
        if not active:
            _ok(api.post(f"/credentials/{made['id']}/deactivate"))
    eventually(
        lambda: "quay-shop" in {s["metadata"]["name"] for s in fake.objects("secrets", "shop")},
        timeout=60,
        what="the sync delivers shop's Secrets",
    )
    deploy = {"name": "web", "image": "registry.example.com/shop/web:1.4", "port": 8080}
    _ok(api.post("/clusters/prod/namespaces/shop/workloads", json=deploy))


@contextmanager
def example_site(base: Path) -> Iterator[Any]:
    """A served site with the example data, on a fake cluster whose kubelet pulls anything."""
    from tests.kube.fake_apiserver import FakeApiServer
    from tests.web.conftest import open_site

    fake = FakeApiServer().start()
    try:
        fake.simulate(lambda image, namespace, secrets: (True, ""))
        with open_site(base) as site:
            _example_data(site, fake, base)
            yield site
    finally:
        fake.stop()


def take(
    site: Any,
    browser: Any,
    out: Path,
    shots: Sequence[Shot] = SHOTS,
    report: Callable[[str], None] = print,
) -> list[Path]:
    """Each shot's page, logged in as its user, written to out/FILE; a page that does not
    answer 200 stops the run (RuntimeError saying which)."""
    from tests.web.conftest import PASSWORDS, log_in

    out.mkdir(parents=True, exist_ok=True)
    written = []
    for shot in shots:
        context = browser.new_context(viewport={"width": shot.width, "height": 900})
        context.set_default_timeout(30_000)
        try:
            page = context.new_page()
            password = site.server.admin_password if shot.user == "admin" else None
            log_in(page, site, shot.user, password or PASSWORDS[shot.user])
            answer = page.goto(site.url + shot.path)
            status = answer.status if answer is not None else 0
            if status != 200:
                raise RuntimeError(f"{shot.path} answered {status}, not 200 ({shot.file})")
            page.wait_for_selector(shot.ready)
            page.evaluate(_UNCLOCK, [CLOCK, FIXED_TIME])
            target = out / shot.file
            page.screenshot(path=str(target), full_page=shot.full_page, animations="disabled")
            report(f"{status} {shot.path} ({shot.user}, {shot.width} px) -> {target}")
            written.append(target)
        finally:
            context.close()
    return written


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="scripts/screenshots", description=__doc__.split("\n")[0])
    parser.add_argument(
        "--out", type=Path, default=DOCS, help="Where the PNGs go [default: docs/]."
    )
    args = parser.parse_args(argv)
    from playwright.sync_api import sync_playwright

    from tests.web.conftest import CHROMIUM, CHROMIUM_ARGS

    with (
        tempfile.TemporaryDirectory(prefix="pk-screenshots-") as tmp,
        example_site(Path(tmp)) as site,
        sync_playwright() as p,
    ):
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            take(site, browser, args.out.resolve())
        except RuntimeError as e:
            print(f"error: {e}", file=sys.stderr)
            return 1
        finally:
            browser.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
