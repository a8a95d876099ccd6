"""Build the ``negotiate`` click command once per test process.

``typer.testing.CliRunner.invoke`` turns the Typer app into a click command on every call,
which reads every command's signature and type hints again: about 34 ms per invocation,
three quarters of a fuzzed file's validate-or-run.  The app's commands never change while
tests run, so the built command can be reused; each invocation still runs the real command
with fresh arguments, environment and streams.
"""

from __future__ import annotations

import functools

import typer.testing


def build_each_app_once() -> None:
    build = getattr(typer.testing, "_get_command", None)
    if build is None or isinstance(build, functools._lru_cache_wrapper):
        return  # another typer layout, or already cached: invoke as typer does
    typer.testing._get_command = functools.cache(build)  # type: ignore[attr-defined]
