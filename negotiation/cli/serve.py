"""``negotiate serve``: the rehearsal studio, a local web app where a team takes seats."""

from __future__ import annotations

import contextlib
import ipaddress
import secrets
import socket
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from negotiation.cli.common import OnIdle, UsageError, console, error_console
from negotiation.safe_text import for_terminal

if TYPE_CHECKING:
    import uvicorn


def is_loopback(host: str) -> bool:
    """Whether ``host`` listens on this machine only."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def serve(
    host: Annotated[str, typer.Option(
        help="Address to listen on. The default serves this machine only; any other "
             "address lets anyone who can reach it open the studio.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(
        min=0, max=65535, help="Port to listen on; 0 asks the system for a free one (the "
                               "printed address names the port it got).")] = 8765,
    transcripts: Annotated[Path, typer.Option(
        help="Folder for the rehearsals' transcripts (open ones resume on restart).")
    ] = Path("transcripts"),
    scenarios: Annotated[Path | None, typer.Option(
        help="A folder of scenario files to offer besides the shipped ones.")] = None,
    keys: Annotated[Path | None, typer.Option(
        help="Folder of signatory keys the server signs seats' sign-offs with (default: "
             "your local keys, see 'negotiate keys list').")] = None,
    idle_timeout: Annotated[float | None, typer.Option(
        min=1, help="Seconds a person may take for a turn; then --on-idle decides "
                    "what happens to it (the transcript records it).")] = None,
    on_idle: Annotated[OnIdle, typer.Option(
        help="An idle seat's turn: 'strategy' (the idle strategy plays it; its rationale "
             "says so) or 'pass' (no move: a 'passed' event; the standing offer stays). "
             "The default for new rehearsals; the set-up page may choose per rehearsal.")
    ] = OnIdle.strategy,
    idle_strategy: Annotated[str, typer.Option(
        help="The strategy that plays an idle seat's turn.")] = "conceder",
) -> None:
    """Start the rehearsal studio: pick a scenario, give people secret seat links, watch
    the referee, and sign the agreement off in the browser.  Stop it with Ctrl-C; open
    rehearsals continue when it starts again."""
    import uvicorn

    from negotiation.idle import check_settings
    from negotiation.run_files import check_writable
    from negotiation.studio import Studio, create_app
    from negotiation.studio.guard import LOOPBACK_HOSTS

    check_settings(idle_timeout, idle_strategy)
    if scenarios is not None and not scenarios.is_dir():
        raise UsageError(f"--scenarios {scenarios}: no such folder")
    check_writable(transcripts)
    if not is_loopback(host):
        error_console().print(
            f"[bold yellow]warning:[/] listening on {for_terminal(host)}: anyone who can "
            "reach this address can open the seat links they are given; setting up and past "
            "runs need the key in the link below. The traffic is not encrypted; put it "
            "behind HTTPS or keep the default 127.0.0.1.", soft_wrap=True)
    # Others can reach a wider address: the facilitator's pages (setting up a rehearsal
    # shows every seat's link, hence every brief) then need the key in the printed link.
    # On this machine only, a page elsewhere re-pointing its name here is refused by Host.
    local = is_loopback(host)
    key = None if local else secrets.token_urlsafe(32)
    studio = Studio(transcripts, scenario_folder=scenarios, keys_folder=keys,
                    idle_timeout=idle_timeout, idle_strategy=idle_strategy,
                    on_idle="pass" if on_idle is OnIdle.pass_ else "strategy",
                    facilitator_key=key,
                    allowed_hosts=LOOPBACK_HOSTS | {host.lower()} if local else None)
    shown = f"[{host}]" if ":" in host else host
    entry = "" if key is None else f"?key={key}"

    def announce(bound: int) -> None:
        console.print(f"Rehearsal studio at [bold]http://{for_terminal(shown)}:{bound}/{entry}"
                      f"[/] (transcripts in {for_terminal(str(transcripts))}; Ctrl-C stops it)",
                      soft_wrap=True)  # the link is copied whole

    # The runs compute on a thread of their own; a short GIL switch interval lets the
    # server's thread answer requests between their steps (benchmarks/bench_studio.py).
    sys.setswitchinterval(0.0005)
    config = uvicorn.Config(create_app(studio), host=host, port=port, log_level="warning",
                            timeout_graceful_shutdown=2, access_log=False)
    server = _announcing(config, announce)
    try:
        with contextlib.suppress(KeyboardInterrupt):  # as uvicorn.run does around its server
            server.run()
    except SystemExit:  # uvicorn's own exit when it cannot start; it logged why
        if server.started:
            raise
    if not server.started:
        raise UsageError(f"cannot listen on {host}:{port} (see above); choose another "
                         "--port, or 0 for any free one")


def _announcing(config: uvicorn.Config, announce: Callable[[int], None]) -> uvicorn.Server:
    """A ``uvicorn.Server`` (imported here, late) naming the address once it listens: the
    port the system chose for ``--port 0`` is known only then, from the bound socket."""
    import uvicorn

    class AnnouncingServer(uvicorn.Server):
        async def startup(self, sockets: list[socket.socket] | None = None) -> None:
            await super().startup(sockets)
            if self.started:
                announce(int(self.servers[0].sockets[0].getsockname()[1]))

    return AnnouncingServer(config)
