"""Script files for ``negotiate dev llm-server``: the replies a scripted model gives.

A script is YAML or JSON (read by the strict loader, like every file a stranger may send)::

    accept_above: 0.6        # optional: accept a standing offer worth more than this to us
    after_last: repeat_last  # or cycle: what to answer once every reply has been given
    replies:                 # answered in order, one per request
      - move: {kind: propose, terms: {...}, rationale: "...", message: "..."}
      - text: "this is not JSON"   # a malformed reply: the agent retries with the error
      - status: 429                # an error status: the client backs off and retries
      - move: {kind: accept, rationale: "Agreed."}
        delay: 0.5                 # seconds before answering

With ``accept_above``, a request whose situation lists ``accept`` among the legal moves and
a standing offer worth more than the threshold to the asking party is answered with an
accept, without using up a reply.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationError, model_validator

from negotiation.devtools.llm_server import Reply, Script, reply_json, reply_status, reply_text
from negotiation.model import Strict
from negotiation.scenario import Problem, ScenarioError, validation_problems, yaml_mapping
from negotiation.strict_yaml import StrictYamlError, read_data_file


class ScriptError(ScenarioError):
    """A server script cannot be used; the message names the file, each field and the fix."""

    what = "server script"


class ScriptedReply(Strict):
    """One reply: a move (sent as JSON), raw text, or an HTTP error status."""

    move: dict[str, Any] | None = None
    text: str | None = None
    status: int | None = Field(default=None, ge=400, le=599)
    delay: float = Field(default=0.0, ge=0.0, le=60.0)

    @model_validator(mode="after")
    def _one_kind(self) -> ScriptedReply:
        given = [name for name in ("move", "text", "status") if getattr(self, name) is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of 'move', 'text' or 'status'")
        return self

    def reply(self) -> Reply:
        if self.move is not None:
            return reply_json(self.move, delay=self.delay)
        if self.text is not None:
            return reply_text(self.text, delay=self.delay)
        assert self.status is not None
        return reply_status(self.status)


class ServerScript(Strict):
    """What a scripted model answers, request after request."""

    replies: list[ScriptedReply] = Field(min_length=1, max_length=10_000)
    accept_above: float | None = Field(default=None, ge=0.0, le=1.0)
    after_last: Literal["repeat_last", "cycle"] = "repeat_last"

    def script(self) -> Script:
        """The function the server calls with each request body and its number."""
        given = 0

        def answer(request: dict[str, Any], number: int) -> Reply:
            nonlocal given
            if self.accept_above is not None and _worth_accepting(request, self.accept_above):
                return reply_json({"kind": "accept", "rationale": "This meets our needs."})
            index = given % len(self.replies) if self.after_last == "cycle" \
                else min(given, len(self.replies) - 1)
            given += 1
            return self.replies[index].reply()

        return answer


def _worth_accepting(request: dict[str, Any], threshold: float) -> bool:
    """Whether the request's '## Now' block offers an accept worth more than ``threshold``."""
    try:
        user = next(m["content"] for m in request["messages"] if m["role"] == "user")
        now = json.loads(user.split("## Now\n", 1)[1].rsplit("\nReply with", 1)[0])
        standing = now["standing_offer"]
        return "accept" in now["legal_moves"] and standing is not None \
            and float(standing["its_utility_for_you"]) > threshold
    except (KeyError, IndexError, TypeError, ValueError, StopIteration):
        return False  # not the prompt this tool knows: answer from the script


def load_script(path: Path) -> ServerScript:
    """Read and check a script file; ``ScriptError`` naming the file, field and fix."""
    source = str(path)
    try:
        text = read_data_file(path)
    except StrictYamlError as error:
        raise ScriptError(source, [Problem("", error.reason)]) from None
    except (OSError, UnicodeDecodeError) as error:
        raise ScriptError(source, [Problem("", f"cannot read the file: {error}")]) from None
    data = yaml_mapping(text, source, ScriptError, "replies, accept_above, after_last")
    try:
        return ServerScript.model_validate(data)
    except ValidationError as error:
        raise ScriptError(source, list(validation_problems(error))) from None
