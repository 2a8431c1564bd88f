"""`pullkeeper completion SHELL`: the script click writes, sourced in a real bash, completing
with the real executable; zsh's and fish's protocol answered by the executable too."""

from __future__ import annotations

import os
import shlex
from pathlib import Path

import pytest

from .conftest import PULLKEEPER, isolated_env, pk, pk_ok, require, run

pytestmark = pytest.mark.integration


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    """The executable found as `pullkeeper` on PATH, as the script calls it back."""
    env = isolated_env(tmp_path / "home")
    env["PATH"] = f"{Path(PULLKEEPER).parent}{os.pathsep}{env.get('PATH', '')}"
    return env


def bash_completes(env: dict[str, str], words: list[str]) -> list[str]:
    """What bash offers for the last of words after sourcing `pullkeeper completion bash`."""
    bash = require("bash", "the shell completion test")
    script = pk_ok("completion", "bash", env=env).stdout
    program = f"""
{script}
complete -p pullkeeper >&2
COMP_WORDS=({" ".join(shlex.quote(w) for w in words)})
COMP_CWORD={len(words) - 1}
_pullkeeper_completion pullkeeper
printf '%s\\n' "${{COMPREPLY[@]}}"
"""
    result = run([bash, "--norc", "--noprofile", "-c", program], env=env)
    assert result.returncode == 0, result.describe()
    # The script registered its function for `pullkeeper`, with no other complaint.
    assert result.stderr == "complete -o nosort -F _pullkeeper_completion pullkeeper\n"
    return [line for line in result.stdout.splitlines() if line]


@pytest.mark.parametrize(
    ("words", "offered"),
    [
        (["pullkeeper", "cre"], ["credential", "creds"]),
        (["pullkeeper", "secret", "create", "d"], ["docker-registry"]),
        (["pullkeeper", "completion", ""], ["bash", "zsh", "fish"]),
        (["pullkeeper", "check", "--pull-p"], ["--pull-policy"]),
        (["pullkeeper", "check", "--pull-policy", "I"], ["IfNotPresent"]),
    ],
    ids=["command", "subcommand", "argument", "option", "option-value"],
)
def test_bash_completes_with_the_real_executable(
    env: dict[str, str], words: list[str], offered: list[str]
) -> None:
    assert bash_completes(env, words) == offered


def test_bash_offers_every_command(env: dict[str, str]) -> None:
    help_text = pk_ok("--help", env=env).stdout
    listed = help_text.partition("Commands:\n")[2].splitlines()
    commands = [line.split()[0] for line in listed if line.startswith("  ")]
    assert "completion" in commands
    assert bash_completes(env, ["pullkeeper", ""]) == commands


@pytest.mark.parametrize(
    ("shell", "cword", "expected"),
    [
        (
            "zsh",
            "1",
            "plain\ncredential\nRegistry credentials: create, list, edit,...\n"
            "plain\ncreds\nRegistry credentials as the kubelet sees...\n",
        ),
        # fish sends the word being completed, not its index.
        (
            "fish",
            "cre",
            "plain,credential\tRegistry credentials: create, list, edit,...\n"
            "plain,creds\tRegistry credentials as the kubelet sees...\n",
        ),
    ],
)
def test_zsh_and_fish_are_answered_by_the_executable(
    env: dict[str, str], shell: str, cword: str, expected: str
) -> None:
    script = pk_ok("completion", shell, env=env).stdout
    assert f"_PULLKEEPER_COMPLETE={shell}_complete" in script
    asked = {
        **env,
        "_PULLKEEPER_COMPLETE": f"{shell}_complete",
        "COMP_WORDS": "pullkeeper cre",
        "COMP_CWORD": cword,
    }
    answer = pk(env=asked)
    assert answer.returncode == 0, answer.describe()
    assert answer.stdout == expected


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_the_script_is_the_one_clicks_protocol_gives(env: dict[str, str], shell: str) -> None:
    """`completion SHELL` prints what `_PULLKEEPER_COMPLETE=SHELL_source pullkeeper` does."""
    ours = pk_ok("completion", shell, env=env)
    clicks = pk_ok(env={**env, "_PULLKEEPER_COMPLETE": f"{shell}_source"})
    assert ours.out == clicks.out
    assert ours.out.startswith((b"_pullkeeper_completion() {", b"#compdef", b"function "))


def test_an_unknown_shell_is_refused(env: dict[str, str]) -> None:
    result = pk("completion", "tcsh", env=env)
    assert result.returncode == 2, result.describe()
    assert result.out == b""
    assert "'tcsh' is not one of 'bash', 'zsh', 'fish'" in result.stderr
