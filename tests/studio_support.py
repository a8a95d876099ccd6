"""Helpers for the studio's tests: a real ``negotiate serve`` process, and scripted people
who act over HTTP exactly as the seat page's script does."""

from __future__ import annotations

import re
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from tests.conftest import REPO

#: Runs the installed CLI in this interpreter (the venv), whatever PATH says.
CLI = [sys.executable, "-c", "from negotiation.cli import main; main()"]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Server:
    """``negotiate serve`` in a subprocess, on a port of its own."""

    transcripts: Path
    port: int = field(default_factory=free_port)
    extra: list[str] = field(default_factory=list)
    process: subprocess.Popen[str] | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Server:
        self.process = subprocess.Popen(
            [*CLI, "serve", "--port", str(self.port), "--transcripts", str(self.transcripts),
             *self.extra], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            text=True)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the server ended: {self.process.stdout.read()}")  # type: ignore[union-attr]
            try:
                httpx.get(self.base + "/", timeout=1)
                return self
            except httpx.HTTPError:
                time.sleep(0.2)
        raise RuntimeError("the server did not start within 60 s")

    def kill(self) -> None:
        """SIGKILL: the hardest stop, nothing is flushed or closed."""
        assert self.process is not None
        self.process.kill()
        self.process.wait(10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)


@dataclass
class Links:
    rehearsal: str
    seats: dict[str, str]
    observer: str


def set_up(client: httpx.Client, base: str, scenario: str, seats: dict[str, str],
           rounds: int | None = None, on_idle: str | None = None) -> Links:
    """What a facilitator does on the setup page: assign the seats (and what an idle
    seat's turn gets), get the links."""
    page = client.get(f"{base}/setup/{scenario}").text
    match = re.search(r'name="csrf" value="([^"]+)"', page)
    assert match is not None
    form = {"csrf": match.group(1), "scenario": scenario,
            **{f"seat-{party}": spec for party, spec in seats.items()}}
    if rounds is not None:
        form["rounds"] = str(rounds)
    if on_idle is not None:
        form["on_idle"] = on_idle
    reply = client.post(f"{base}/rehearsals", data=form, headers={"origin": base})
    assert reply.status_code == 200, reply.text
    links = dict(re.findall(r'class="seat-link" data-party="([\w-]+)" href="([^"]+)"',
                            reply.text))
    observer = re.search(r'id="observer-link" href="([^"]+)"', reply.text)
    rehearsal = re.search(r'/r/([^/]+)/', observer.group(1)) if observer else None
    assert observer is not None and rehearsal is not None
    return Links(rehearsal.group(1), links, observer.group(1))


@dataclass
class Person:
    """A scripted person at one seat: reads the page's state, answers with the page's
    requests.  Accepts a standing offer worth at least its reservation value (plus
    ``margin``), else proposes ``opening`` first and the standing offer after."""

    client: httpx.Client
    url: str
    base: str
    opening: dict[str, Any] | None = None
    margin: float = 0.0
    csrf: str = ""
    seen: list[str] = field(default_factory=list)

    def open(self) -> Person:
        page = self.client.get(self.url).text
        self.seen.append(page)
        match = re.search(r'data-csrf="([^"]+)"', page)
        assert match is not None
        self.csrf = match.group(1)
        return self

    def state(self) -> dict[str, Any]:
        reply = self.client.get(self.url + "/state")
        self.seen.append(reply.text)
        data: dict[str, Any] = reply.json()
        return data

    def move(self, body: dict[str, Any]) -> httpx.Response:
        reply = self.client.post(self.url + "/move", json={**body, "csrf": self.csrf},
                                 headers={"origin": self.base})
        self.seen.append(reply.text)
        return reply

    def choose(self, state: dict[str, Any]) -> dict[str, Any]:
        standing = state["standing"]
        if "accept" in state["legal"] and standing is not None and \
                standing["utility"] >= state["reservation_value"] + self.margin:
            return {"kind": "accept", "rationale": "This works for us."}
        terms = standing["terms"] if standing is not None and self.opening is None \
            else self.opening
        self.opening = None
        return {"kind": "propose", "terms": terms, "rationale": "We can live with this."}

    def play(self) -> bool:
        """One look at the seat: move if it is this seat's turn.  True once it has ended."""
        state = self.state()
        if state["outcome"] is not None or state["problem"]:
            return True
        if state["your_turn"]:
            reply = self.move(self.choose(state))
            assert reply.status_code == 200, reply.text
        return False

    def sign(self, decision: str, comment: str = "") -> httpx.Response:
        reply = self.client.post(self.url + "/signoff",
                                 json={"decision": decision, "comment": comment,
                                       "csrf": self.csrf}, headers={"origin": self.base})
        self.seen.append(reply.text)
        return reply


def play_to_the_end(people: list[Person], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if all([person.play() for person in people]):
            return
        time.sleep(0.05)
    raise AssertionError("the rehearsal did not end in time")
