"""Who is acting, and what their roles let them do."""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["MEMBER", "OWNER", "PROJECT_ROLES", "SYSTEM", "VIEWER", "Actor"]

OWNER, MEMBER, VIEWER = "owner", "member", "viewer"
PROJECT_ROLES = (OWNER, MEMBER, VIEWER)


@dataclass(frozen=True, slots=True)
class Actor:
    user_id: str
    username: str
    is_admin: bool = False
    # A global viewer reads every object's metadata, never secret material.
    viewer: bool = False
    # project id -> owner | member | viewer
    projects: dict[str, str] = field(default_factory=dict)
    source: str = ""
    # A node token's actor: the cluster whose node credentials it reads, and nothing else.
    node_cluster_id: str | None = None

    @property
    def sees_everything(self) -> bool:
        return self.is_admin or self.viewer

    def sees(self, project_id: str | None) -> bool:
        """Whether the project's objects exist for this actor: any role in it will do."""
        return self.sees_everything or self.role_in(project_id) is not None

    def role_in(self, project_id: str | None) -> str | None:
        return self.projects.get(project_id) if project_id else None

    def owns(self, project_id: str | None) -> bool:
        return self.is_admin or self.role_in(project_id) == OWNER

    def uses(self, project_id: str | None) -> bool:
        """Admins, and the project's owners and members: they use its credentials."""
        return self.is_admin or self.role_in(project_id) not in (None, VIEWER)

    @property
    def owns_a_project(self) -> bool:
        return self.is_admin or OWNER in self.projects.values()

    @property
    def uses_a_project(self) -> bool:
        return self.is_admin or any(role != VIEWER for role in self.projects.values())


SYSTEM = Actor(user_id="", username="system", is_admin=True)
