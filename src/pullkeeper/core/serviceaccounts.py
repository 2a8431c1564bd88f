"""ServiceAccount mode: the delivered Secrets added to ServiceAccounts' imagePullSecrets.

A pod that names no imagePullSecrets gets its ServiceAccount's, so adding the
Secrets there reaches pods however they are created. pullkeeper adds only
what is missing, never removes an entry it did not add, and removes its own
when their credential goes; an annotation on the ServiceAccount remembers
which entries are its own.

Which ServiceAccounts: none (the mode is off), `default`, a chosen set of
names, or `*` for every one, those created later included.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pullkeeper.core.names import InvalidName, validate_subdomain

ADDED_ANNOTATION = "pullkeeper.io/image-pull-secrets"
ALL = "*"


class ServiceAccountsError(ValueError):
    """A ServiceAccount selection that is not a list of names or "*"."""


def check_selection(names: Sequence[str]) -> tuple[str, ...]:
    out = []
    for name in names:
        if name == ALL:
            if len(names) > 1:
                raise ServiceAccountsError('"*" (every ServiceAccount) stands alone')
        else:
            try:
                validate_subdomain(name)
            except InvalidName as e:
                raise ServiceAccountsError(f"{name!r} is not a ServiceAccount name: {e}") from None
        out.append(name)
    return tuple(dict.fromkeys(out))


def selected(selection: Sequence[str] | None, account: str) -> bool:
    return bool(selection) and (ALL in (selection or ()) or account in (selection or ()))


@dataclass(frozen=True, slots=True)
class Account:
    namespace: str
    name: str
    pull_secrets: tuple[str, ...]  # imagePullSecrets names, in order
    ours: tuple[str, ...]  # the entries pullkeeper added, from the annotation
    resource_version: str = ""

    @classmethod
    def from_object(cls, obj: Mapping[str, Any]) -> Account:
        meta = obj.get("metadata") or {}
        annotation = (meta.get("annotations") or {}).get(ADDED_ANNOTATION, "")
        return cls(
            namespace=str(meta.get("namespace", "")),
            name=str(meta.get("name", "")),
            pull_secrets=tuple(
                str(e.get("name", ""))
                for e in obj.get("imagePullSecrets") or ()
                if isinstance(e, dict)
            ),
            ours=tuple(n for n in annotation.split(",") if n),
            resource_version=str(meta.get("resourceVersion", "")),
        )


@dataclass(frozen=True, slots=True)
class Change:
    account: Account
    pull_secrets: tuple[str, ...]
    ours: tuple[str, ...]

    def apply_to(self, obj: Mapping[str, Any]) -> dict[str, Any]:
        """The ServiceAccount object with the new list and annotation (for a replace)."""
        meta = dict(obj.get("metadata") or {})
        annotations = dict(meta.get("annotations") or {})
        if self.ours:
            annotations[ADDED_ANNOTATION] = ",".join(self.ours)
        else:
            annotations.pop(ADDED_ANNOTATION, None)
        meta["annotations"] = annotations
        out = {
            **obj,
            "metadata": meta,
            "imagePullSecrets": [{"name": n} for n in self.pull_secrets],
        }
        if not self.pull_secrets:
            del out["imagePullSecrets"]
        return out


def change_for(account: Account, wanted: Sequence[str]) -> Change | None:
    """What the account's list should become so that `wanted` (this namespace's delivered
    Secrets, for a selected account; none otherwise) are on it; None when it already is."""
    want = list(dict.fromkeys(wanted))
    mine = set(account.ours)
    # The user's entries all stay, in their order; ours stay while still wanted.
    keep = [n for n in account.pull_secrets if n not in mine or n in want]
    added = [n for n in want if n not in keep]
    new = tuple(keep + added)
    # An entry the user had already is theirs, not ours, even if we want it too.
    theirs = {n for n in account.pull_secrets if n not in mine}
    ours = tuple(n for n in want if n not in theirs)
    if new == account.pull_secrets and set(ours) == mine:
        return None
    return Change(account, new, ours)


def changes(
    accounts: Iterable[Account],
    selection_of: Mapping[str, Sequence[str] | None],
    secrets_of: Mapping[str, Sequence[str]],
) -> list[Change]:
    """Every account write needed, given each namespace's selection and delivered Secrets."""
    out = []
    for account in accounts:
        chosen = selected(selection_of.get(account.namespace), account.name)
        wanted = secrets_of.get(account.namespace, ()) if chosen else ()
        change = change_for(account, wanted)
        if change is not None:
            out.append(change)
    return out


def account_manifest(namespace: str, name: str, secrets: Sequence[str]) -> dict[str, Any]:
    """A ServiceAccount listing these Secrets, for GitOps: applied, it owns the whole list."""
    return {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "annotations": {ADDED_ANNOTATION: ",".join(secrets)},
        },
        "imagePullSecrets": [{"name": n} for n in secrets],
    }
