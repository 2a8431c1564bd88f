"""The real registries of tests/registry, for the docs' examples that talk to one."""

from tests.registry.conftest import oci_layouts, plain_registry, token_registry  # noqa: F401
