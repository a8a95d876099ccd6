"""A scripted OpenAI-compatible chat-completions server (127.0.0.1 by default).

It answers ``POST /v1/chat/completions`` from a script instead of a model, over real HTTP,
so the real ``openai`` client can be tested, demonstrated and benchmarked offline: good
moves, malformed JSON, schema violations, slow replies, 429 and 500.  Every request body
it receives is kept in ``requests`` (that is how isolation tests see what a model would).

    with ScriptedServer(lambda request, n: reply_json({"kind": "accept", ...})) as server:
        client = openai.AsyncOpenAI(base_url=server.base_url, api_key="test")
"""

from __future__ import annotations

import json
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class Reply:
    """One scripted answer: an HTTP status, a body, an optional delay and headers."""

    status: int = 200
    body: str = ""
    delay: float = 0.0
    headers: dict[str, str] = field(default_factory=dict)


def _completion(message: dict[str, Any], model: str = "scripted",
                finish_reason: str = "stop", usage: tuple[int, int] = (100, 20)) -> str:
    return json.dumps({
        "id": "chatcmpl-scripted", "object": "chat.completion", "created": 0, "model": model,
        "choices": [{"index": 0, "message": message, "finish_reason": finish_reason}],
        "usage": {"prompt_tokens": usage[0], "completion_tokens": usage[1],
                  "total_tokens": sum(usage)},
    })


def reply_text(content: str, delay: float = 0.0, usage: tuple[int, int] = (100, 20)) -> Reply:
    """A completion whose message content is ``content`` verbatim (e.g. malformed JSON);
    ``usage`` is the (prompt, completion) tokens it reports."""
    return Reply(body=_completion({"role": "assistant", "content": content}, usage=usage),
                 delay=delay)


def reply_json(move: dict[str, Any], delay: float = 0.0,
               usage: tuple[int, int] = (100, 20)) -> Reply:
    """A completion whose content is ``move`` as JSON."""
    return reply_text(json.dumps(move), delay=delay, usage=usage)


def reply_tool_call(name: str, arguments: dict[str, Any], call_id: str = "call_1") -> Reply:
    message = {"role": "assistant", "content": None, "tool_calls": [{
        "id": call_id, "type": "function",
        "function": {"name": name, "arguments": json.dumps(arguments)}}]}
    return Reply(body=_completion(message, finish_reason="tool_calls"))


def reply_status(status: int, retry_after_ms: int = 1) -> Reply:
    """An error status (429, 500, …) with an OpenAI-style error body."""
    body = json.dumps({"error": {"message": f"scripted {status}", "type": "scripted",
                                 "code": str(status)}})
    return Reply(status=status, body=body, headers={"retry-after-ms": str(retry_after_ms)})


Script = Callable[[dict[str, Any], int], Reply]


def within_max_tokens(reply: Reply, max_tokens: Any) -> Reply:
    """A completion cut at the request's ``max_tokens``, as a real server does: the
    usage reports at most that many completion tokens, the text is cut (four characters
    a token) and ``finish_reason`` is ``length``."""
    if reply.status != 200 or not isinstance(max_tokens, int):
        return reply
    try:
        completion = json.loads(reply.body)
        usage = completion["usage"]
        if usage["completion_tokens"] <= max_tokens:
            return reply
        usage["completion_tokens"] = max_tokens
        usage["total_tokens"] = usage["prompt_tokens"] + max_tokens
        for choice in completion["choices"]:
            choice["finish_reason"] = "length"
            content = choice["message"].get("content")
            if isinstance(content, str):
                choice["message"]["content"] = content[:4 * max_tokens]
    except (json.JSONDecodeError, KeyError, TypeError):
        return reply  # not a completion: served as scripted
    return Reply(reply.status, json.dumps(completion), reply.delay, reply.headers)


class ScriptedServer:
    """Serve ``script(request_body, call_number)`` until closed, on ``port`` (0: a free
    one) of ``host``."""

    def __init__(self, script: Script, *, host: str = "127.0.0.1", port: int = 0) -> None:
        self.script = script
        self.requests: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # Headers and body go out as two writes; without TCP_NODELAY the second waits
            # for a delayed ACK (~40 ms) on keep-alive connections.
            disable_nagle_algorithm = True

            def do_POST(self) -> None:
                length = int(self.headers.get("content-length", "0"))
                raw = self.rfile.read(length)
                try:
                    body = json.loads(raw)
                except json.JSONDecodeError:
                    body = {"_raw": raw.decode("utf-8", "replace")}
                with server._lock:
                    number = len(server.requests)
                    server.requests.append(body)
                reply = within_max_tokens(server.script(body, number), body.get("max_tokens"))
                if reply.delay:
                    time.sleep(reply.delay)
                payload = reply.body.encode()
                self.send_response(reply.status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(payload)))
                for key, value in reply.headers.items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, format: str, *args: Any) -> None:
                return  # quiet: tests read the requests, not a log

        class Server(ThreadingHTTPServer):
            request_queue_size = 256  # the default backlog of 5 drops concurrent connects
            daemon_threads = True

        self._server = Server((host, port), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/v1"

    def serve_forever(self) -> None:
        """Serve in this thread until interrupted (the ``negotiate dev`` command)."""
        try:
            self._server.serve_forever()
        finally:
            self._server.server_close()

    def start(self) -> ScriptedServer:
        self._thread.start()
        return self

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> ScriptedServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()


# --- a model that answers with random moves its request's schema allows --------------------

def random_valid_moves(seed: int = 0) -> Script:
    """Answer each request with a random move that is valid against the JSON Schema the
    request sends (``response_format.json_schema``), as an unhelpful model under
    structured output would.  A request in JSON mode sends no schema: the move is then
    drawn from the reply format the prompt describes (any kind, terms optional, any
    rationale), as the same model without structured output would.  The invalid-reply rate
    of an agent against this server measures what its schema lets through."""
    chooser = random.Random(seed)
    lock = threading.Lock()

    def script(request: dict[str, Any], number: int) -> Reply:
        response_format = request.get("response_format") or {}
        schema = (response_format.get("json_schema") or {}).get("schema") \
            or described_format(request)
        with lock:  # one stream of choices, whatever the server's threads do
            move = _sample(schema, chooser)
        return reply_json(move)

    return script


def described_format(request: dict[str, Any]) -> dict[str, Any]:
    """The reply format the prompt describes in words, as a schema: any move kind, terms
    optional (one value per issue, split shares on the step grid), any rationale."""
    user = next(m["content"] for m in request["messages"] if m.get("role") == "user")
    scenario = json.loads(user.split("## The negotiation (public)\n", 1)[1]
                          .split("\n\n## ", 1)[0])
    properties: dict[str, Any] = {}
    for issue in scenario["issues"]:
        if issue["kind"] == "discrete":
            properties[issue["id"]] = {"enum": issue["options"]}
        elif issue["kind"] == "numeric":
            properties[issue["id"]] = {"type": "number", "minimum": issue["min"],
                                       "maximum": issue["max"], "multipleOf": issue["step"]}
        else:
            properties[issue["id"]] = {
                "type": "object", "required": issue["parties"],
                "properties": {p: {"type": "integer", "minimum": 0, "maximum": 100,
                                   "multipleOf": issue["step"]} for p in issue["parties"]}}
    terms = {"type": "object", "required": list(properties), "properties": properties}
    return {"type": "object", "required": ["kind", "rationale"], "properties": {
        "kind": {"enum": ["propose", "accept", "walk_away"]},
        "terms": {"anyOf": [terms, {"type": "null"}]},
        "rationale": {"type": "string"},
        "message": {"anyOf": [{"type": "string"}, {"type": "null"}]}}}


_WORDS = ("fair", "value", "terms", "balance", "growth", "risk", "share", "partners")


def _sample(schema: dict[str, Any], chooser: random.Random) -> Any:
    """A random instance of the subset of JSON Schema the agents send."""
    if "enum" in schema:
        return chooser.choice(schema["enum"])
    if "anyOf" in schema:
        return _sample(chooser.choice(schema["anyOf"]), chooser)
    kind = schema.get("type")
    if kind == "object":
        required = set(schema.get("required", []))
        return {name: _sample(sub, chooser) for name, sub in schema["properties"].items()
                if name in required or chooser.random() < 0.5}
    if kind in {"number", "integer"}:
        step = schema.get("multipleOf", 1)
        low, high = schema.get("minimum", 0), schema.get("maximum", 100)
        value = low + step * chooser.randint(0, round((high - low) / step))
        return int(value) if kind == "integer" or float(value).is_integer() else value
    if kind == "null":
        return None
    # A string: with minLength or a pattern it is never blank; without, sometimes empty.
    if not schema.get("minLength") and not schema.get("pattern") and chooser.random() < 0.1:
        return ""
    return " ".join(chooser.choice(_WORDS) for _ in range(chooser.randint(1, 8))).capitalize()
