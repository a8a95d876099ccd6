"""Developer commands: ``negotiate dev llm-server``, a scripted OpenAI-compatible server
for trying LLM agents without an API key."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from negotiation.cli.common import console, friendly_errors
from negotiation.errors import InputError
from negotiation.safe_text import for_terminal

dev_app = typer.Typer(help="Developer tools: a scripted LLM server for trying LLM mode "
                           "offline.", no_args_is_help=True)


@dev_app.command(name="llm-server")
@friendly_errors
def llm_server(
    script: Annotated[Path | None, typer.Option(
        help="Script file (YAML or JSON): the replies, in order; see docs/llm-server.md.")
    ] = None,
    random_moves: Annotated[int | None, typer.Option(
        metavar="SEED", help="Instead of a script: answer each request with a random move "
                             "its JSON Schema allows (in JSON mode, the format the prompt "
                             "describes), from this seed.")] = None,
    port: Annotated[int, typer.Option(min=0, max=65535, help="Port (0: any free one).")
                    ] = 8000,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
) -> None:
    """Serve an OpenAI-compatible /v1/chat/completions endpoint that answers from a script
    instead of a model, until interrupted (Ctrl-C).  Point an LLM agent at it with
    OPENAI_BASE_URL=http://HOST:PORT/v1 and OPENAI_API_KEY=anything."""
    from negotiation.devtools.llm_script import load_script
    from negotiation.devtools.llm_server import ScriptedServer, random_valid_moves

    if (script is None) == (random_moves is None):
        raise InputError("give --script FILE or --random-moves SEED (one of them)")
    if script is not None:
        loaded = load_script(script)
        answers, described = loaded.script(), (f"{len(loaded.replies)} replies from "
                                               f"{for_terminal(str(script))}")
    else:
        answers, described = random_valid_moves(random_moves or 0), \
            f"random valid moves (seed {random_moves})"
    try:
        server = ScriptedServer(answers, host=host, port=port)
    except OSError as error:
        raise InputError(f"cannot listen on {host}:{port}: {error.strerror or error}; choose "
                         "another --port (or 0 for any free one)") from None
    console.print(f"scripted LLM server: {described}\n"
                  f"  export OPENAI_BASE_URL={server.base_url} OPENAI_API_KEY=scripted\n"
                  "  then e.g. negotiate run platform-app-vendor --agent vendor=llm:scripted\n"
                  "Ctrl-C to stop.", highlight=False)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        console.print("stopped")
