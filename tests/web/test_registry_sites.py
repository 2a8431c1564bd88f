"""Adding a registry for each kind of site through the form, in a real browser: the form adapts
to the site (fixed, prefilled or required address; fixed user name; the GCR key), refuses an
address of the wrong shape in the site's own words, and stores what the API then reports."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

import pytest

from tests.web.conftest import Site, log_in

pytestmark = pytest.mark.integration

FIXED, PREFILLED, REQUIRED = "fixed", "prefilled", "required"
# A throwaway service-account key: GCR's check wants client_email and private_key in it.
GCR_KEY = json.dumps(
    {
        "type": "service_account",
        "client_email": "puller@example-project.iam.gserviceaccount.com",
        "private_key": "-----BEGIN PRIVATE KEY-----\nnot-a-real-key\n-----END PRIVATE KEY-----\n",
    }
)


@dataclass(frozen=True)
class Kind:
    provider: str
    title: str
    address: str  # FIXED, PREFILLED or REQUIRED
    shown: str  # the address field's value when the form opens
    typed: str  # the address typed (REQUIRED), or kept (FIXED, PREFILLED)
    username: str | None = None  # a fixed user name, shown read-only
    bad_address: str | None = None
    bad_message: str = ""


KINDS = [
    Kind(
        "dockerhub",
        "Docker Hub",
        FIXED,
        "https://index.docker.io/v1/",
        "https://index.docker.io/v1/",
    ),
    Kind("quay", "Quay.io", FIXED, "quay.io", "quay.io"),
    Kind("ghcr", "GitHub Container Registry", FIXED, "ghcr.io", "ghcr.io"),
    Kind(
        "gitlab",
        "GitLab Container Registry",
        PREFILLED,
        "registry.gitlab.com",
        "gitlab.example.com:5050",
        bad_address="https://gitlab.example.com",
        bad_message="is not registry.gitlab.com or your GitLab's registry host[:port]",
    ),
    Kind("harbor", "Harbor", REQUIRED, "", "harbor.example.com"),
    Kind("artifactory", "JFrog Artifactory", REQUIRED, "", "example.jfrog.io"),
    Kind(
        "ecr",
        "Amazon ECR",
        REQUIRED,
        "",
        "123456789012.dkr.ecr.eu-west-1.amazonaws.com",
        username="AWS",
        bad_address="ecr.eu-west-1.amazonaws.com",
        bad_message="is not ACCOUNT.dkr.ecr.REGION.amazonaws.com",
    ),
    Kind(
        "gcr",
        "Google Container Registry / Artifact Registry",
        PREFILLED,
        "gcr.io",
        "europe-west1-docker.pkg.dev",
        username="_json_key",
    ),
    Kind(
        "acr",
        "Azure Container Registry",
        REQUIRED,
        "",
        "examplepull.azurecr.io",
        bad_address="examplepull.azure.com",
        bad_message="is not NAME.azurecr.io",
    ),
    Kind(
        "ibm",
        "IBM Cloud Container Registry",
        PREFILLED,
        "icr.io",
        "de.icr.io",
        username="iamapikey",
    ),
    Kind(
        "ocir",
        "Oracle Cloud Infrastructure Registry",
        REQUIRED,
        "",
        "eu-frankfurt-1.ocir.io",
        bad_address="ocir.example.com",
        bad_message="is not REGION.ocir.io",
    ),
    Kind("custom", "Custom registry", REQUIRED, "", "registry.example.com:5000"),
]


def expect() -> Any:
    from playwright.sync_api import expect as playwright_expect

    return playwright_expect


def test_every_provider_is_covered() -> None:
    from pullkeeper.core.providers import PROVIDERS

    assert sorted(k.provider for k in KINDS) == sorted(PROVIDERS)


@pytest.mark.parametrize("kind", KINDS, ids=[k.provider for k in KINDS])
def test_add_a_registry_of_each_kind(page: Any, site: Site, kind: Kind) -> None:
    log_in(page, site, "alice")  # an owner adds registries to her project's namespaces
    page.goto(site.url + "/credentials/new")
    page.get_by_label("Provider", exact=True).select_option(label=kind.title)
    expect()(page.locator("#registry-form h2")).to_have_text(kind.title)

    address = page.get_by_label("Registry address")
    expect()(address).to_have_value(kind.shown)
    if kind.address == FIXED:
        expect()(address).to_have_attribute("readonly", "")
    else:
        expect()(address).not_to_have_attribute("readonly", "")
    if kind.address == REQUIRED:
        expect()(address).to_have_attribute("required", "")
    user = page.get_by_label("User name")
    if kind.username:
        expect()(user).to_have_value(kind.username)
        expect()(user).to_have_attribute("readonly", "")
    else:
        expect()(user).to_have_value("")

    name = f"site-{kind.provider}"
    page.get_by_label("Name", exact=True).fill(name)
    page.get_by_label("Cluster", exact=True).select_option("prod")
    page.get_by_label("Namespace", exact=True).fill("a-api")
    if not kind.username:
        page.get_by_label("User name").fill("puller")
    secret = f"{kind.provider}-s3cret-token"
    if kind.provider == "gcr":
        secret = GCR_KEY
        page.get_by_label("Service-account JSON key").fill(secret)
    else:
        page.get_by_label("Password or token").fill(secret)

    if kind.bad_address:
        address.fill(kind.bad_address)
        page.get_by_role("button", name="Save registry").click()
        expect()(page.locator("#server-error")).to_have_text(
            f"{kind.bad_address!r} {kind.bad_message}"
        )
        assert site.credentials(name) == []
        assert secret not in page.content()  # typed again after an error, never sent back
        if kind.provider == "gcr":
            page.get_by_label("Service-account JSON key").fill(secret)
        else:
            page.get_by_label("Password or token").fill(secret)
    if kind.address != FIXED:
        page.get_by_label("Registry address").fill(kind.typed)
    page.get_by_role("button", name="Save registry").click()
    page.wait_for_url(re.compile(r"/credentials/[0-9a-f]{32}\?created=1$"))
    expect()(page.get_by_role("heading", level=1)).to_contain_text(name)
    assert secret not in page.content()

    [stored] = site.credentials(name)
    assert (stored["provider"], stored["server"], stored["username"], stored["scope"]) == (
        kind.provider,
        kind.typed,
        kind.username or "puller",
        "namespace",
    )
    page.goto(site.url + f"/credentials?q={name}")
    row = page.locator("tbody tr", has_text=name)
    expect()(row).to_contain_text(kind.title)
    expect()(row).to_contain_text(kind.typed)
