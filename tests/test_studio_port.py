"""``negotiate serve --port 0``: the system picks a free port while the server binds it, and
the printed address names that port, so no port is chosen (and lost to another process)
before the server listens."""

from __future__ import annotations

import socket
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

from tests.studio_support import CLI, Server


def test_port_0_prints_the_port_that_serves_and_two_servers_get_different_ones(
        tmp_path: Path) -> None:
    first, second = Server(tmp_path / "a"), Server(tmp_path / "b")
    try:
        with ThreadPoolExecutor(2) as both:  # started together, binding side by side
            list(both.map(Server.start, (first, second)))
        assert first.port != second.port and 0 not in (first.port, second.port)
        for server in (first, second):
            # one request, no retries: the address is printed once the port listens
            page = httpx.get(server.base + "/", timeout=10)
            assert page.status_code == 200 and "Rehearsal studio" in page.text
            assert f"Rehearsal studio at http://127.0.0.1:{server.port}/ " in server.said()
    finally:
        first.stop()
        second.stop()


def test_a_port_in_use_is_refused_with_a_hint_to_choose_another(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run([*CLI, "serve", "--port", str(port), "--transcripts",
                               str(tmp_path / "t")], capture_output=True, text=True,
                              timeout=60)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "Rehearsal studio at" not in done.stdout  # no address that does not serve
    said = " ".join(done.stderr.split())
    assert "address already in use" in said
    assert f"error: cannot listen on 127.0.0.1:{port} (see above); choose another --port, " \
           "or 0 for any free one" in said
    assert "Traceback" not in said
