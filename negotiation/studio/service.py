"""The studio's rehearsals: the scenarios it offers, the rehearsals it runs, the runs it
keeps, and the rehearsals a restart finds open and continues."""

from __future__ import annotations

import asyncio
import functools
import os
import threading
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from agents import strategy_names
from negotiation.engine import HUMAN, new_transcript_path, resumable_header
from negotiation.errors import InputError, NegotiationError
from negotiation.idle import OnIdle
from negotiation.lifecycle import Status, status_of
from negotiation.model import Scenario
from negotiation.scenario import load_scenario, shipped_scenarios
from negotiation.session import zopa_verdict_of
from negotiation.signing import local_keys
from negotiation.studio.rehearsal import (
    SIDECAR,
    Rehearsal,
    Sidecar,
    digest,
    load_sidecar,
    new_tokens,
)
from negotiation.studio.seating import text
from negotiation.transcript import verify

#: Threads driving runs (their disk writes and checkpoints overlap; their Python does not).
DRIVER_THREADS = 1
#: Statuses of a run that a restarted server continues.
OPEN = frozenset({Status.IN_PROGRESS, Status.ABORTED})
#: The environment variable naming the model an "LLM" seat uses (base URL and key: the
#: OpenAI client's usual OPENAI_BASE_URL and OPENAI_API_KEY).
LLM_MODEL_ENV = "NEGOTIATE_STUDIO_LLM_MODEL"


async def _cancel_all() -> None:
    tasks = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


@functools.cache
def negmas_choices() -> list[tuple[str, str]]:
    """NegMAS's own negotiators, where NegMAS is installed (looked up once)."""
    from agents.negmas_seat import PREFIX, negmas_version, negotiator_classes

    if negmas_version() is None:
        return []
    try:
        names = list(negotiator_classes())
    except NegotiationError:  # installed, but not in a state to seat anyone
        return []
    return [(f"{PREFIX}{name}", f"NegMAS: {name}") for name in names]


@dataclass(frozen=True)
class Listed:
    """A scenario the studio offers: where it comes from, or why it cannot be used."""

    key: str
    path: Path
    scenario: Scenario | None
    problem: str = ""


@dataclass
class Studio:
    """Everything one ``negotiate serve`` holds."""

    transcripts: Path
    scenario_folder: Path | None = None
    keys_folder: Path | None = None
    idle_timeout: float | None = None
    idle_strategy: str = "conceder"
    #: What an idle seat's turn gets by default (a rehearsal's set-up may choose).
    on_idle: OnIdle = "strategy"
    #: The secret the facilitator's pages (scenarios, setup, past runs) ask for, from the
    #: link ``negotiate serve`` prints; ``None``: open to whoever reaches the server.
    facilitator_key: str | None = None
    #: The ``Host`` names the server answers to (``None``: any).
    allowed_hosts: frozenset[str] | None = None
    rehearsals: dict[str, Rehearsal] = field(default_factory=dict)
    #: Loops, each in a thread of its own, that drive the rehearsals' runs (each run on
    #: one of them), so that pages, streams and moves are answered while negotiations
    #: compute, and one run's disk writes do not wait for another's.
    drivers: list[asyncio.AbstractEventLoop] = field(default_factory=list)
    driver_threads: int = DRIVER_THREADS
    _started: int = field(default=0, repr=False)
    closing: bool = False
    #: Rehearsals found in the folder that could not be loaded, and why.
    problems: list[str] = field(default_factory=list)

    # --- scenarios and seats ------------------------------------------------------------

    @cached_property
    def catalogue(self) -> dict[str, Listed]:
        """Shipped scenarios, then the folder's (a name already taken is skipped)."""
        found: dict[str, Listed] = {}
        folder = sorted(self.scenario_folder.glob("*.yaml")) if self.scenario_folder and \
            self.scenario_folder.is_dir() else []
        for path in [*shipped_scenarios(), *folder]:
            if path.stem in found:
                continue
            try:
                found[path.stem] = Listed(path.stem, path, load_scenario(path))
            except NegotiationError as error:
                found[path.stem] = Listed(path.stem, path, None, text(error))
        return found

    def scenario(self, key: str) -> Scenario:
        listed = self.catalogue.get(key)
        if listed is None or listed.scenario is None:
            raise LookupError(key)
        return listed.scenario

    def seat_choices(self) -> list[tuple[str, str]]:
        """What may sit at each organisation: a person, a strategy, the server's LLM."""
        choices = [(HUMAN, "a person (secret link)")]
        choices += [(name, f"rule-based: {name}") for name in strategy_names()]
        choices += negmas_choices()
        model = os.environ.get(LLM_MODEL_ENV, "").strip()
        if model:
            choices.append((f"llm:{model}", f"LLM: {text(model)}"))
        return choices

    def signing_keys(self, scenario: Scenario) -> dict[str, Ed25519PrivateKey]:
        """The server's private keys that the scenario declares, per organisation."""
        declared = {key.public_key: org for org, spec in scenario.signatories.items()
                    for key in spec.keys}
        held: dict[str, Ed25519PrivateKey] = {}
        for local in local_keys(self.keys_folder):
            org = declared.get(local.signatory.public_key)
            if org is not None and org not in held:
                held[org] = local.private_key()
        return held

    # --- rehearsals ---------------------------------------------------------------------

    def create(self, key: str, seats: dict[str, str], *, rounds: int | None = None,
               seed: int = 0, on_idle: str | None = None
               ) -> tuple[Rehearsal, dict[str, str], str]:
        """A new rehearsal, started in the background; its seat tokens and observer token
        are returned once and only their hashes are kept.  ``on_idle`` (``strategy`` or
        ``pass``) overrides the server's choice for a seat left idle."""
        scenario = self.scenario(key)
        allowed = {value for value, _ in self.seat_choices()}
        for party in scenario.party_ids:
            if seats.get(party) not in allowed:
                raise InputError(f"choose who sits at {party}")
        if rounds is not None and not 1 <= rounds <= 1000:
            raise InputError("the deadline must be between 1 and 1000 rounds")
        idle = on_idle or self.on_idle
        if idle not in ("strategy", "pass"):
            raise InputError("an idle seat's turn either passes or is played by the idle "
                             "strategy: choose 'pass' or 'strategy'")
        verdict = zopa_verdict_of(scenario, seed)  # recorded as 'negotiate run --anyway'
        path = new_transcript_path(self.transcripts, scenario, seed)
        people = [party for party in scenario.party_ids if seats[party] == HUMAN]
        tokens, observer = new_tokens(people)
        sidecar = Sidecar(seats={p: digest(t) for p, t in tokens.items()},
                          observer=digest(observer), idle_timeout=self.idle_timeout,
                          idle_strategy=self.idle_strategy, on_idle=idle)
        rehearsal = Rehearsal(path, scenario, dict(seats), sidecar, seed=seed, rounds=rounds,
                              signing_keys=self.signing_keys(scenario),
                              options=None if verdict is None else {"zopa": verdict})
        rehearsal.save()
        self.rehearsals[rehearsal.id] = rehearsal
        self._start(rehearsal, resume=False)
        return rehearsal, tokens, observer

    def _start(self, rehearsal: Rehearsal, *, resume: bool) -> None:
        if not self.drivers:
            raise RuntimeError("the studio is not serving")
        self._started += 1
        loop = self.drivers[self._started % len(self.drivers)]
        asyncio.run_coroutine_threadsafe(rehearsal.run(resume=resume), loop)

    def start_drivers(self) -> None:
        for n in range(self.driver_threads):
            loop = asyncio.new_event_loop()
            threading.Thread(target=loop.run_forever, name=f"studio-driver-{n}",
                             daemon=True).start()
            self.drivers.append(loop)

    async def stop_drivers(self) -> None:
        """Stop every run (each leaves a transcript that resumes) and the drivers' loops."""
        loops, self.drivers = self.drivers, []
        for loop in loops:
            await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(_cancel_all(), loop))
            loop.call_soon_threadsafe(loop.stop)

    def reopen(self) -> list[str]:
        """Load every rehearsal of the transcript folder; continue the open ones.
        Returns the problems of the ones that cannot be loaded."""
        problems = []
        for side in sorted(self.transcripts.glob(f"*{SIDECAR}")):
            transcript = side.with_name(side.name.removesuffix(SIDECAR) + ".jsonl")
            try:
                rehearsal = self._load(transcript, load_sidecar(side))
            except NegotiationError as error:
                problems.append(f"{transcript.name}: {text(error)}")
                continue
            self.rehearsals[rehearsal.id] = rehearsal
            if status_of(rehearsal.events) in OPEN:
                self._start(rehearsal, resume=True)
        return problems

    def _load(self, transcript: Path, sidecar: Sidecar) -> Rehearsal:
        result = verify(transcript)
        if not result.ok or not result.events:
            raise InputError(f"does not verify ({result.reason})")
        header, scenario = resumable_header(result.events[0], transcript)
        assert header.protocol is not None
        return Rehearsal(transcript, scenario, dict(header.agents), sidecar,
                         seed=header.seed, rounds=header.protocol.rounds,
                         signing_keys=self.signing_keys(scenario), events=result.events)

    # --- past runs ----------------------------------------------------------------------

    def past_runs(self) -> list[dict[str, Any]]:
        """Every transcript in the folder with its lifecycle status, newest first."""
        runs = []
        for path in sorted(self.transcripts.glob("*.jsonl"), reverse=True):
            if path.name.endswith(".calls.jsonl"):
                continue
            try:
                result = verify(path)
            except NegotiationError:  # a folder, a FIFO or an unreadable file by that name
                runs.append({"name": path.stem, "status": "not a transcript",
                             "scenario": "?", "events": 0})
                continue
            header = result.events[0] if result.events else {}
            try:
                status = status_of(result.events).value if result.ok else "TAMPERED"
            except NegotiationError:
                status = "TAMPERED"
            runs.append({"name": path.stem, "status": status,
                         "scenario": text(header.get("scenario_id", "?")),
                         "events": len(result.events)})
        return runs

    def past_run(self, name: str) -> Path:
        """The transcript of a listed run (a name is looked up, never joined to a path)."""
        for path in self.transcripts.glob("*.jsonl"):
            if path.stem == name and not path.name.endswith(".calls.jsonl"):
                return path
        raise LookupError(name)
