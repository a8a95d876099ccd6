"""The HTTP side of LLM agents: one ``LLMRun`` per run (client, budget, recording and
replay), the transports that record, replay and count attempts, and the rule for
when a placeholder API key may be sent (loopback servers and replays only)."""

from __future__ import annotations

import functools
import hashlib
import ipaddress
import json
import os
import ssl
import time
from collections.abc import Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx2
import openai

from agents import StrategyError
from agents.budget import Budget
from negotiation import files
from negotiation.errors import InputError, RefusedError
from negotiation.model import (
    LLMSettings,
)


def request_key(body: bytes) -> str:
    """Identity of a request: sha256 of its canonical JSON body."""
    try:
        canonical = json.dumps(json.loads(body), sort_keys=True, separators=(",", ":"))
    except json.JSONDecodeError:
        canonical = body.decode("utf-8", "replace")
    return hashlib.sha256(canonical.encode()).hexdigest()


class RecordingTransport(httpx2.AsyncBaseTransport):
    """Forwards to the real network and appends each successful request/reply pair to a
    JSON Lines recording (flushed and fsynced).

    With ``replay_first``, requests already in the recording are answered from it and not
    sent again: a resumed run does not pay twice for calls it made before a crash."""

    def __init__(self, path: Path, inner: httpx2.AsyncBaseTransport | None = None,
                 replay_first: bool = False) -> None:
        self.path = path
        self.inner = inner or httpx2.AsyncHTTPTransport()
        self.recorded = ReplayTransport(path, consume=True) \
            if replay_first and path.exists() else None
        #: Replies that could not be recorded (a full disk), with the reason.
        self.unrecorded: list[str] = []

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        body = await request.aread()
        if self.recorded is not None and self.recorded.replies.get(request_key(body)):
            return await self.recorded.handle_async_request(request)
        response = await self.inner.handle_async_request(request)
        content = await response.aread()
        if response.status_code < 400:
            line = json.dumps({"key": request_key(body), "request": json.loads(body),
                               "status": response.status_code,
                               "response": json.loads(content)}, sort_keys=True)
            try:
                _append_record(self.path, line)
            except files.OutputError as error:
                # Raised here it would reach the agent as a connection error (and a retry
                # would pay again): the reply is used, and the transcript's own write of
                # this call, on the same full disk, stops the run with a clear message.
                self.unrecorded.append(str(error))
        return httpx2.Response(response.status_code, headers=response.headers,
                               content=content, request=request)

    async def aclose(self) -> None:
        await self.inner.aclose()


@dataclass
class CallMeter:
    """The model call in progress in this task: each HTTP attempt the SDK makes inside it
    (retries included) is admitted by the budget before it is sent and noted after."""

    budget: Budget
    attempts: list[dict[str, Any]] = field(default_factory=list)


#: The meter of the model call in progress in this task (the SDK retries inside a call).
CALL_METER: ContextVar[CallMeter | None] = ContextVar("llm_call_meter", default=None)


class AttemptsTransport(httpx2.AsyncBaseTransport):
    """Admits each HTTP attempt of a model call against the call budget (a spent budget
    raises ``BudgetExceeded`` before the request leaves) and notes its status, or the
    error that ended it, so the ``llm_call`` event shows retries the SDK made."""

    def __init__(self, inner: httpx2.AsyncBaseTransport) -> None:
        self.inner = inner

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        meter = CALL_METER.get()
        if meter is not None:
            meter.budget.admit_request()
        started = time.perf_counter()
        try:
            response = await self.inner.handle_async_request(request)
        except httpx2.TransportError as error:
            if meter is not None:
                meter.attempts.append({"error": type(error).__name__,
                                       "ms": round((time.perf_counter() - started) * 1000, 1)})
            raise
        if meter is not None:
            meter.attempts.append({"status": response.status_code,
                                   "ms": round((time.perf_counter() - started) * 1000, 1)})
        return response

    async def aclose(self) -> None:
        await self.inner.aclose()


def _append_record(path: Path, line: str) -> None:
    """Append one recorded reply, whole and fsynced, never through a symlink (the first
    reply creates the file exclusively); ``files.OutputError`` if it cannot."""
    try:
        fd = files.open_existing(path) if os.path.lexists(path) \
            else files.create_exclusive(path)
        try:
            with files.locked(fd):
                files.append_whole(fd, (line + "\n").encode())
        finally:
            os.close(fd)
    except OSError as error:
        raise files.write_error(path, error) from None


#: The key of a recording's line that names the run it was made for.
RUN_KEY = "run"


def run_identity(scenario_id: str, scenario_digest: str, seed: int,
                 agents: Mapping[str, str]) -> dict[str, Any]:
    """What a recording must have been made with for a replay to be the same run: the
    scenario (its digest), the seed and each organisation's agent."""
    return {"scenario_id": scenario_id, "scenario_digest": scenario_digest, "seed": seed,
            "agents": dict(agents)}


class ReplayMismatch(RefusedError):
    """A replay of a recording made with another scenario, seed or agent set."""


def _differences(recorded: Mapping[str, Any], current: Mapping[str, Any]) -> list[str]:
    said = []
    if recorded.get("scenario_digest") != current["scenario_digest"]:
        same_id = recorded.get("scenario_id") == current["scenario_id"]
        said.append(f"scenario '{recorded.get('scenario_id')}'"
                    + (" with other contents" if same_id else "")
                    + f" (this run: '{current['scenario_id']}')")
    if recorded.get("seed") != current["seed"]:
        said.append(f"seed {recorded.get('seed')} (this run: {current['seed']})")
    if recorded.get("agents") != current["agents"]:
        agents = recorded.get("agents") or {}
        said.append("agents " + ", ".join(f"{k}={v}" for k, v in sorted(agents.items()))
                    + " (this run: " + ", ".join(f"{k}={v}" for k, v in
                                                 sorted(current["agents"].items())) + ")")
    return said


def _read_regular(path: Path) -> bytes:
    """The bytes of ``path``, refused (``RecordingError``) unless it is a regular file: a
    FIFO planted beside a run would block the read for ever."""
    try:
        fd = files.open_regular(path)
    except files.NotRegularFile:
        raise RecordingError(f"{path} is not a regular file, so not a recording; remove it"
                             ) from None
    with os.fdopen(fd, "rb") as handle:
        return handle.read()


class RecordingError(InputError):
    """A recording of LLM replies that cannot be read (a resumed run's, or --replay's):
    refused with its line, never half-used."""


class ReplayTransport(httpx2.AsyncBaseTransport):
    """Serves recorded replies offline; identical requests get their replies in order."""

    def __init__(self, path: Path, consume: bool = False) -> None:
        self.consume = consume
        self.replies: dict[str, list[dict[str, Any]]] = {}
        try:
            lines = _read_regular(path).decode("utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as error:
            raise RecordingError(f"cannot read the recording {path}: {error}") from None
        #: The runs the recording was made for (``run_identity``), in order.
        self.runs: list[dict[str, Any]] = []
        for number, line in enumerate(lines, start=1):
            try:
                entry = json.loads(line)
                if RUN_KEY in entry:
                    self.runs.append(dict(entry[RUN_KEY]))
                    continue
                self.replies.setdefault(entry["key"], []).append(entry["response"])
            except (json.JSONDecodeError, KeyError, TypeError, ValueError):
                raise RecordingError(f"{path}, line {number}: not a recorded reply (the "
                                     "recording was edited or damaged)") from None
        self.path = path

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        queue = self.replies.get(request_key(await request.aread()))
        if queue and self.consume:
            return httpx2.Response(200, json=queue.pop(0), request=request)
        if not queue:
            message = (f"this request is not in the recording {self.path.name}: the scenario, "
                       "agents, seed or prompts changed since it was recorded")
            return httpx2.Response(404, json={"error": {"message": message,
                                                        "type": "replay_miss"}},
                                   request=request)
        return httpx2.Response(200, json=queue.pop(0) if len(queue) > 1 else queue[0],
                               request=request)


@functools.cache
def _ssl_context() -> ssl.SSLContext:
    """One trust store for every client: building it costs ~20 ms each time."""
    return httpx2.create_ssl_context()


#: Where the openai client sends requests when no base URL is set.
OPENAI_DEFAULT_URL = "https://api.openai.com/v1"


def is_loopback(url: str) -> bool:
    """Whether ``url`` points at this machine (``localhost`` or a loopback address)."""
    host = (urlsplit(url).hostname or "").rstrip(".").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class LLMConnectionError(RuntimeError):
    """The model's server could not be reached (refused, unknown host) or did not answer
    in time; the message names the URL and the model."""


@dataclass
class LLMRun:
    """What the LLM agents of a run share: the budget, the HTTP clients (one connection
    pool per endpoint), and recording or replay.  Close it when the run is over."""

    budget: Budget = field(default_factory=Budget)
    record: Path | None = None
    replay: Path | None = None
    #: Record to ``record`` but answer requests already recorded there (resumed runs).
    replay_first: bool = False
    #: Replay even a recording made for another scenario, seed or agent set.
    replay_anyway: bool = False
    _clients: dict[tuple[str | None, str, float, int], openai.AsyncOpenAI] = field(
        default_factory=dict, repr=False)

    def begin_run(self, scenario_id: str, scenario_digest: str, seed: int,
                  agents: Mapping[str, str]) -> None:
        """A negotiation starts: a replay refuses (``ReplayMismatch``) a recording made
        for another scenario, seed or agent set, unless ``replay_anyway``; a recording
        notes the run (once) before its replies.  A recording that names no run (made
        before recordings did) is replayed as it is."""
        identity = run_identity(scenario_id, scenario_digest, seed, agents)
        if self.replay is not None:
            runs = ReplayTransport(self.replay).runs
            if runs and identity not in runs and not self.replay_anyway:
                raise ReplayMismatch(
                    f"the recording {self.replay.name} was made with "
                    + "; ".join(_differences(runs[-1], identity))
                    + ": its replies would not match this run's requests. Replay it with "
                    "the recorded settings, or add --replay-anyway to try regardless")
        if self.record is not None:
            recorded = ReplayTransport(self.record).runs if self.record.exists() else []
            if identity not in recorded:
                _append_record(self.record, json.dumps({RUN_KEY: identity}, sort_keys=True))

    def base_url(self, settings: LLMSettings) -> str | None:
        """Where ``settings`` sends requests: None is the OpenAI default."""
        return settings.base_url or os.environ.get("OPENAI_BASE_URL") or \
            ("http://replay.invalid/v1" if self.replay else None)

    def api_key(self, settings: LLMSettings) -> str:
        """The key from ``settings.api_key_env``; without one, a placeholder only when
        replaying or for a server on this machine (a loopback address), else an error."""
        key = os.environ.get(settings.api_key_env)
        if key:
            return key
        if self.replay is not None:
            return "replay"
        base_url = self.base_url(settings)
        if base_url is not None and is_loopback(base_url):
            return "not-needed-for-local-servers"
        raise StrategyError(
            f"the LLM agent for model '{settings.model}' needs an API key for "
            f"{base_url or 'the OpenAI API (' + OPENAI_DEFAULT_URL + ')'}: set the "
            f"environment variable {settings.api_key_env} (agent.llm.api_key_env); only "
            "servers on this machine (localhost, 127.0.0.1, ::1) run without one")

    def client(self, settings: LLMSettings) -> openai.AsyncOpenAI:
        base_url = self.base_url(settings)
        key = (base_url, settings.api_key_env, settings.timeout, settings.max_retries)
        if key in self._clients:
            return self._clients[key]
        transport: httpx2.AsyncBaseTransport
        if self.replay is not None:
            transport = ReplayTransport(self.replay)
        else:
            transport = httpx2.AsyncHTTPTransport(verify=_ssl_context())
            if self.record is not None:
                transport = RecordingTransport(self.record, transport, self.replay_first)
        api_key = self.api_key(settings)
        client = openai.AsyncOpenAI(
            api_key=api_key, base_url=base_url, timeout=settings.timeout,
            max_retries=settings.max_retries,
            http_client=httpx2.AsyncClient(transport=AttemptsTransport(transport),
                                           timeout=settings.timeout))
        self._clients[key] = client
        return client

    async def aclose(self) -> None:
        clients, self._clients = list(self._clients.values()), {}
        for client in clients:
            await client.close()


# --- prompts -----------------------------------------------------------------------------
