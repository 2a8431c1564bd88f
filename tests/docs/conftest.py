"""The real registries of tests/registry and the Helm of tests/deploy, for the docs'
examples that use them."""

from tests.deploy.conftest import helm_built  # noqa: F401
from tests.registry.conftest import oci_layouts, plain_registry, token_registry  # noqa: F401
