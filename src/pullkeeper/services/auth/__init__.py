"""Who may act: users and their passwords, API tokens, project memberships, the first admin.

Modules: `users` (users, password changes and resets), `tokens` (login, issuing, revoking
and authenticating API tokens), `memberships` (role bindings in projects), `throttle` (the
login throttle), `token_cache` (recently authenticated actors), `hashing` (how passwords
and tokens are stored), `first_start` (the first admin), `user_states` (disabling, enabling
and deleting users). The password rules themselves are core.passwords.
"""

from __future__ import annotations

from pullkeeper.services.auth.first_start import FirstStart, bootstrap
from pullkeeper.services.auth.memberships import (
    check_may_change_members,
    may_change_members,
    member_counts,
    members,
    remove_member,
    set_member,
)
from pullkeeper.services.auth.throttle import LoginThrottle
from pullkeeper.services.auth.token_cache import TokenCache
from pullkeeper.services.auth.tokens import (
    TOKEN_PREFIX,
    authenticate,
    issue_token,
    list_tokens,
    list_user_tokens,
    login,
    of_kind,
    revoke_token,
    token_dict,
)
from pullkeeper.services.auth.user_states import (
    Deletion,
    UserProject,
    delete_user,
    deletion,
    disable_user,
    enable_user,
    user_projects,
)
from pullkeeper.services.auth.users import (
    change_password,
    check_admin,
    create_user,
    get_user,
    list_users,
    reset_password,
    user_dict,
)

__all__ = [
    "TOKEN_PREFIX",
    "Deletion",
    "FirstStart",
    "LoginThrottle",
    "TokenCache",
    "UserProject",
    "authenticate",
    "bootstrap",
    "change_password",
    "check_admin",
    "check_may_change_members",
    "create_user",
    "delete_user",
    "deletion",
    "disable_user",
    "enable_user",
    "get_user",
    "issue_token",
    "list_tokens",
    "list_user_tokens",
    "list_users",
    "login",
    "may_change_members",
    "member_counts",
    "members",
    "of_kind",
    "remove_member",
    "reset_password",
    "revoke_token",
    "set_member",
    "token_dict",
    "user_dict",
    "user_projects",
]
