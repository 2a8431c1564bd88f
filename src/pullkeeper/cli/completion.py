"""`pullkeeper completion SHELL`: the shell completion script click writes for `pullkeeper`.

The script calls `pullkeeper` back with `_PULLKEEPER_COMPLETE=SHELL_complete` at each Tab;
click answers that from the commands themselves, so completion cannot drift from them.
"""

from __future__ import annotations

import click
from click.shell_completion import BashComplete, FishComplete, ShellComplete, ZshComplete

SHELLS: dict[str, type[ShellComplete]] = {
    "bash": BashComplete,
    "zsh": ZshComplete,
    "fish": FishComplete,
}
PROG_NAME = "pullkeeper"
COMPLETE_VAR = "_PULLKEEPER_COMPLETE"


@click.command("completion")
@click.argument("shell", type=click.Choice(list(SHELLS)))
def completion(shell: str) -> None:
    """Print the shell completion script for SHELL: bash, zsh or fish.

    For bash (4.4 or newer), put eval "$(pullkeeper completion bash)" in ~/.bashrc; for
    zsh, eval "$(pullkeeper completion zsh)" in ~/.zshrc; for fish, write the script to
    ~/.config/fish/completions/pullkeeper.fish.
    """
    root = click.get_current_context().find_root().command
    click.echo(SHELLS[shell](root, {}, PROG_NAME, COMPLETE_VAR).source(), nl=False)
