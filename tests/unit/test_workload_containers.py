"""A workload's containers as a request gives them: one image, or a list named after it."""

from __future__ import annotations

import pytest

from pullkeeper.core.workloads import Container
from pullkeeper.services.errors import Invalid
from pullkeeper.services.workloads import containers_of


def test_one_image_is_one_container_named_after_the_workload() -> None:
    assert containers_of("web", "nginx:1.27", 8080, None) == [Container("web", "nginx:1.27", 8080)]
    assert containers_of("web", "nginx:1.27", None, None) == [Container("web", "nginx:1.27")]


def test_unnamed_containers_of_a_list_are_named_after_the_workload() -> None:
    given = [Container("", "proxy:1"), Container("app", "app:2", 80), Container("", "hub:3")]
    assert containers_of("duo", None, None, given) == [
        Container("duo", "proxy:1"),
        Container("app", "app:2", 80),
        Container("duo-2", "hub:3"),
    ]


@pytest.mark.parametrize(
    ("image", "port", "containers", "field"),
    [
        (None, None, None, "image"),
        ("nginx:1.27", None, [Container("", "hub:3")], "image"),
        (None, 8080, [Container("", "hub:3")], "port"),
    ],
)
def test_image_or_containers_but_not_both(
    image: str | None, port: int | None, containers: list[Container] | None, field: str
) -> None:
    with pytest.raises(Invalid) as refused:
        containers_of("w", image, port, containers)
    assert refused.value.field == field
