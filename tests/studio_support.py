"""Helpers for the studio's tests: a real ``negotiate serve`` process, and scripted people
who act over HTTP exactly as the seat page's script does."""

from __future__ import annotations

import queue
import re
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import httpx

from tests.conftest import REPO

#: Runs the installed CLI in this interpreter (the venv), whatever PATH says.
CLI = [sys.executable, "-c", "from negotiation.cli import main; main()"]


#: The line ``negotiate serve`` prints once it listens, with the port it got.
ANNOUNCED = re.compile(r"Rehearsal studio at http://\S+?:(\d+)/")


class ServerOutput:
    """Everything a server process prints (stdout and stderr), read on a thread of its own
    so the pipe never fills; ``wait_for`` waits, bounded, for a line matching a pattern."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        assert process.stdout is not None
        self.process = process
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.seen: list[str] = []
        self.reader = threading.Thread(target=self._read, args=(process.stdout,), daemon=True)
        self.reader.start()

    def _read(self, stream: IO[str]) -> None:
        for line in stream:
            self.lines.put(line)
        self.lines.put(None)

    def wait_for(self, pattern: re.Pattern[str], timeout: float = 60) -> re.Match[str]:
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            try:
                line = self.lines.get(timeout=left)
            except queue.Empty:
                break
            if line is None:
                raise RuntimeError(f"the server ended (exit {self.process.wait(10)}) without "
                                   f"printing its address; it printed: {self.text()!r}")
            self.seen.append(line)
            if match := pattern.search(line):
                return match
        raise RuntimeError(f"the server printed no address within {timeout:g} s; it printed: "
                           f"{self.text()!r}")

    def text(self) -> str:
        """What it printed so far; all of it once the process has ended."""
        if self.process.poll() is not None:
            self.reader.join(10)
        while True:
            try:
                line = self.lines.get_nowait()
            except queue.Empty:
                break
            if line is not None:
                self.seen.append(line)
        return "".join(self.seen)


def start_serve(*args: str, timeout: float = 60,
                ) -> tuple[subprocess.Popen[str], ServerOutput, re.Match[str]]:
    """``negotiate serve ARGS`` (pass ``--port 0``) in a subprocess: the process, its
    output, and the line naming its address (group 1: the port).  No port is picked
    beforehand, so none can be taken by another process in between."""
    process = subprocess.Popen([*CLI, "serve", *args], cwd=REPO, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
    output = ServerOutput(process)
    try:
        announced = output.wait_for(ANNOUNCED, timeout)
    except BaseException:
        process.kill()
        process.wait(10)
        raise
    return process, output, announced


@dataclass
class Server:
    """``negotiate serve`` in a subprocess, on a port the system gives it (``--port 0``),
    or on ``port`` (a restart where people's links name the old one)."""

    transcripts: Path
    port: int = 0
    extra: list[str] = field(default_factory=list)
    process: subprocess.Popen[str] | None = None
    output: ServerOutput | None = None

    @property
    def base(self) -> str:
        assert self.port, "start() the server first"
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Server:
        self.process, self.output, announced = start_serve(
            "--port", str(self.port), "--transcripts", str(self.transcripts), *self.extra)
        self.port = int(announced.group(1))
        return self

    def said(self) -> str:
        """Everything it printed (all of it once stopped)."""
        assert self.output is not None
        return self.output.text()

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
