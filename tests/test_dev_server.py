"""``negotiate dev llm-server``: a scripted OpenAI-compatible server, so LLM mode can be
tried without an API key; the runtime never imports it."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from negotiation.devtools.llm_script import ScriptError, ServerScript, load_script
from tests.conftest import REPO
from tests.test_cli import NEGOTIATE, negotiate
from tests.test_graph import interruptible

EXAMPLE = REPO / "examples" / "llm-server-vendor.yaml"


def test_the_server_command_drives_an_llm_agent_end_to_end(tmp_path: Path) -> None:
    env = {**os.environ, "COLUMNS": "160", "NO_COLOR": "1"}
    server = subprocess.Popen(
        [str(NEGOTIATE), "dev", "llm-server", "--port", "0", "--script", str(EXAMPLE)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
        preexec_fn=interruptible)  # Ctrl-C stops it even when pytest runs in the background
    try:
        assert server.stdout is not None
        banner = "".join(server.stdout.readline() for _ in range(2))
        found = re.search(r"OPENAI_BASE_URL=(http://127\.0\.0\.1:\d+/v1)", banner)
        assert found, banner
        run = subprocess.run(
            [str(NEGOTIATE), "run", "platform-app-vendor", "--agent", "vendor=llm:scripted",
             "--seed", "1", "--out", str(tmp_path), "-q"],
            capture_output=True, text=True, timeout=120, cwd=tmp_path,
            env={**env, "OPENAI_BASE_URL": found.group(1), "OPENAI_API_KEY": "scripted"})
        assert run.returncode == 0, run.stderr
        transcript = next(p for p in tmp_path.glob("*.jsonl")
                          if not p.name.endswith(".calls.jsonl"))
        text = transcript.read_text()
        assert '"llm_call"' in text and "standard marketplace split" in text
        checked = negotiate("verify", str(transcript))
        assert checked.returncode == 0 and "OK" in checked.stdout, checked.stdout
    finally:
        server.send_signal(signal.SIGINT)
        out, err = server.communicate(timeout=20)
    assert server.returncode == 0, err
    assert "stopped" in out and "Traceback" not in err


def test_a_script_is_read_with_the_strict_loader_and_checked(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("replies:\n  - text: hi\n    status: 500\n  - &a {text: x}\n  - *a\n")
    with pytest.raises(ScriptError) as raised:
        load_script(bad)
    assert str(bad) in str(raised.value)
    done = negotiate("dev", "llm-server", "--port", "0", "--script", str(bad))
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert str(bad) in done.stderr


def test_a_reply_gives_exactly_one_of_move_text_or_status(tmp_path: Path) -> None:
    script = tmp_path / "two.yaml"
    script.write_text("replies:\n  - {text: hi, status: 500}\n")
    with pytest.raises(ScriptError, match="exactly one of 'move', 'text' or 'status'"):
        load_script(script)


def test_replies_come_in_order_then_the_last_repeats_or_they_cycle() -> None:
    replies = [{"text": "a"}, {"status": 429}, {"move": {"kind": "accept", "rationale": "ok"}}]
    request = {"messages": [{"role": "user", "content": "no situation here"}]}
    for after_last, expected in [("repeat_last", [200, 429, 200, 200]),
                                 ("cycle", [200, 429, 200, 200])]:
        answer = ServerScript.model_validate(
            {"replies": replies, "after_last": after_last}).script()
        got = [answer(request, n) for n in range(4)]
        assert [r.status for r in got] == expected
        assert got[3].body == (got[0] if after_last == "cycle" else got[2]).body


def test_the_runtime_never_imports_the_dev_tools() -> None:
    code = ("import sys, negotiation.api, negotiation.engine, agents, agents.llm, "
            "negotiation.cli; "
            "print(sorted(m for m in sys.modules if m.startswith('negotiation.devtools')))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=REPO, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
