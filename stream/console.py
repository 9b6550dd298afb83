"""What every ``driftline`` command shares: the error console and one-line errors."""

from __future__ import annotations

import functools
from typing import Callable

import typer
from rich.console import Console

from stream.settings import ConfigError
from stream.stack import StackError

err = Console(stderr=True)


def print_error(message: str) -> None:
    err.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True, markup=True)


def friendly_errors(command: Callable) -> Callable:
    """Environment and config problems end in one line naming the cause and the fix, never a traceback."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except (StackError, ConfigError) as exc:
            print_error(str(exc))
            raise typer.Exit(1) from None

    return wrapper
