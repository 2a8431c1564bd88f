"""ServiceAccount imagePullSecrets changes: add what is missing, remove only our own."""

from __future__ import annotations

import pytest

from pullkeeper.core.serviceaccounts import (
    ADDED_ANNOTATION,
    Account,
    ServiceAccountsError,
    change_for,
    changes,
    check_selection,
)


def _account(pulls: tuple[str, ...], ours: tuple[str, ...] = (), name: str = "default") -> Account:
    return Account("shop", name, pulls, ours, "7")


def test_adds_missing_after_the_users_entries() -> None:
    change = change_for(_account(("theirs",)), ["a", "b"])
    assert change is not None
    assert (change.pull_secrets, change.ours) == (("theirs", "a", "b"), ("a", "b"))


def test_nothing_to_do_is_none() -> None:
    assert change_for(_account(("theirs", "a"), ("a",)), ["a"]) is None
    assert change_for(_account(("theirs",)), []) is None


def test_removes_only_its_own() -> None:
    change = change_for(_account(("a", "theirs", "b"), ("a", "b")), ["b"])
    assert change is not None
    assert (change.pull_secrets, change.ours) == (("theirs", "b"), ("b",))


def test_an_entry_the_user_had_stays_theirs() -> None:
    change = change_for(_account(("a",)), ["a", "b"])
    assert change is not None
    assert (change.pull_secrets, change.ours) == (("a", "b"), ("b",))
    # Later, with neither wanted, only ours goes.
    gone = change_for(Account("shop", "default", ("a", "b"), ("b",)), [])
    assert gone is not None and gone.pull_secrets == ("a",) and gone.ours == ()


def test_apply_to_writes_the_list_and_the_annotation() -> None:
    obj = {"metadata": {"name": "default", "namespace": "shop", "resourceVersion": "7"}}
    change = change_for(Account.from_object(obj), ["a"])
    assert change is not None
    written = change.apply_to(obj)
    assert written["imagePullSecrets"] == [{"name": "a"}]
    assert written["metadata"]["annotations"] == {ADDED_ANNOTATION: "a"}
    assert written["metadata"]["resourceVersion"] == "7"  # a replace only at this version
    back = Account.from_object(written)
    assert (back.pull_secrets, back.ours) == (("a",), ("a",))
    empty = change_for(back, [])
    assert empty is not None and "imagePullSecrets" not in empty.apply_to(written)


def test_selection() -> None:
    accounts = [_account((), name="default"), _account((), name="builder")]
    made = changes(accounts, {"shop": ("builder",)}, {"shop": ["a"]})
    assert [c.account.name for c in made] == ["builder"]
    every = changes(accounts, {"shop": ("*",)}, {"shop": ["a"]})
    assert [c.account.name for c in every] == ["default", "builder"]
    assert changes(accounts, {"shop": ()}, {"shop": ["a"]}) == []
    assert check_selection(["default", "builder", "default"]) == ("default", "builder")
    with pytest.raises(ServiceAccountsError, match="stands alone"):
        check_selection(["*", "default"])
    with pytest.raises(ServiceAccountsError, match="not a ServiceAccount name"):
        check_selection(["Bad_Name"])
