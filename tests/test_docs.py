"""The docs work as written: the tutorial's YAML blocks make a valid scenario that runs."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import anyio
import pytest

from negotiation.engine import run_scenario
from negotiation.scenario import parse_scenario
from negotiation.tournament import jobs, load_config
from tests.conftest import REPO


def yaml_blocks(path: str) -> list[str]:
    return re.findall(r"```yaml\n(.+?)\n```", (REPO / path).read_text(), flags=re.DOTALL)


def test_the_scenario_tutorial_blocks_make_a_scenario_that_validates_and_runs() -> None:
    blocks = yaml_blocks("docs/tutorial-scenario.md")
    scenario = parse_scenario("\n".join(blocks), "docs/tutorial-scenario.md")
    assert scenario.id == "telehealth-pilot"
    assert scenario.guardrails.pareto.max_distance == 0.02  # step 5's policy is in it too
    result = anyio.run(lambda: run_scenario(scenario, seed=1))
    assert result.status in {"agreement", "no_agreement"} and result.rounds >= 1


# --- Every `negotiate ...` command in the docs runs as written --------------------------

DOCS = ["README.md", *sorted(f"docs/{p.name}" for p in (REPO / "docs").glob("*.md"))]

# Commands that cannot run offline in a temporary folder, each with the reason. Every entry
# must still appear in the docs (a stale entry fails), and every other command is run.
CANNOT_RUN: dict[str, str] = {
    # docs/cli.md is generated from the code; tests/test_cli.py compares it with the code.
    "python3 -m venv .venv && .venv/bin/pip install -q -e . && .venv/bin/negotiate run "
    "platform-app-vendor": "creates a venv and installs the package: .ci/run does exactly this",
    "negotiate run platform-app-vendor --agent vendor=llm:gpt-4o-mini": "needs an API key",
    "negotiate run SCENARIO --agent vendor=llm:MODEL --budget-calls 40 --budget-tokens 200000":
        "needs an API key",
    "negotiate run SCENARIO --agent vendor=llm:MODEL --budget-cost 0.50 --prices prices.yaml":
        "needs an API key and a prices file the reader writes",
    "negotiate run SCENARIO --agent vendor=llm:MODEL --record calls.jsonl":
        "needs an API key (live call)",
    "negotiate run SCENARIO --agent vendor=llm:MODEL --replay calls.jsonl":
        "replays the recording the line above makes with an API key",
    "negotiate dev llm-server --port 8000 --script examples/llm-server-vendor.yaml &":
        "a background server on a fixed port; tests/test_dev_server.py runs it on a free port",
    "negotiate run platform-app-vendor --agent vendor=llm:scripted":
        "talks to the server above; tests/test_dev_server.py runs this pairing",
    "negotiate verify transcripts/platform-app-vendor-*.jsonl":
        "verifies the scripted server's run above; tests/test_dev_server.py does",
    "negotiate run park-redevelopment --pace 0.2": "paced for watching: ~0.2 s per move",
    "negotiate run rd-joint-venture --human kestrel": "asks a person at the keyboard "
        "(tests/test_human.py drives it with pexpect)",
    "negotiate verify transcripts/<run>.jsonl --signatories kestrel.signatory.yaml --head HASH":
        "needs the signatory file and head the reader kept from the lines above",
    "negotiate --plugin tough=mypkg.strategies:Tough run deal.yaml --agent vendor=tough":
        "mypkg is the reader's own package",
    "negotiate review RUN.jsonl --reject --as vendor --key PATH --comment \"exit clause\"":
        "PATH is the reader's key file",
    "negotiate verify RUN.jsonl --signatories vendor.yaml --signatories platform.yaml":
        "needs each organisation's signatory file",
    "negotiate resume transcripts/<run>.jsonl": "continues a run stopped by Ctrl-C in the "
        "paced run above (tests/test_lifecycle.py interrupts and resumes one)",
    "negotiate review transcripts/<run>.jsonl --approve --as kestrel --comment \"Balanced\"":
        "needs a run awaiting sign-off whose signatories block names kestrel's key "
        "(tests/test_signoff.py signs one)",
    "negotiate review RUN.jsonl --approve --as vendor": "needs a run of the reader's scenario "
        "whose signatories block names vendor's key (tests/test_signoff.py signs one)",
    "negotiate verify RUN.jsonl --head 3f9c…(64 hex digits)": "HASH is the head the reader kept",
    ".venv/bin/negotiate serve": "a web server that runs until Ctrl-C; tests/test_studio*.py "
        "and tests/browser start it on a free port",
    "negotiate serve": "a web server that runs until Ctrl-C; tests/test_studio*.py and "
        "tests/browser start it on a free port",
}


def doc_commands(path: str) -> list[str]:
    """The `negotiate` command lines of a doc's shell blocks, comments dropped, in order."""
    if path == "docs/cli.md":  # generated usage text, compared with the code by test_cli
        return []
    commands = []
    for body in re.findall(r"```(?:bash|sh|console|shell)\n(.*?)```", (REPO / path).read_text(),
                           flags=re.DOTALL):
        for line in body.splitlines():
            command = re.sub(r"\s+#\s.*$", "", line.strip())
            if re.search(r"(^|/)negotiate\s", command):
                commands.append(command)
    return commands


def newest(folder: Path, pattern: str) -> Path:
    found = sorted(folder.glob(pattern), key=lambda path: path.stat().st_mtime)
    assert found, f"no {pattern} in {folder} for a doc command that needs one"
    return found[-1]


def workspace(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    """A reader's folder: the repository's example files, a scenario to edit, the tutorial's
    scenario and tournament; keys and settings kept inside it."""
    for folder in ["campaigns", "tournaments", "examples", "scenarios"]:
        shutil.copytree(REPO / folder, tmp_path / folder)
    scenario = (REPO / "scenarios" / "platform-app-vendor.yaml").read_text()
    for name in ["my-scenario.yaml", "s.yaml", "deal.yaml"]:
        (tmp_path / name).write_text(scenario)
    (tmp_path / "telehealth-pilot.yaml").write_text(
        "\n".join(yaml_blocks("docs/tutorial-scenario.md")))
    race = next(b for b in yaml_blocks("docs/tutorial-strategy.md") if b.startswith("# race.yaml"))
    (tmp_path / "race.yaml").write_text(race)
    env = {key: value for key, value in os.environ.items() if "API_KEY" not in key}
    env |= {"HOME": str(tmp_path / "home"), "XDG_CONFIG_HOME": str(tmp_path / "home" / ".config"),
            "XDG_DATA_HOME": str(tmp_path / "home" / ".local" / "share"),
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
            "PYTHONPATH": str(tmp_path), "COLUMNS": "120"}
    return tmp_path, env


def with_real_paths(command: str, folder: Path) -> str:
    """Put the runs the lines above made where the docs write a placeholder."""
    transcripts = folder / "transcripts"
    if "<run>" in command or "RUN.jsonl" in command:
        run = newest(transcripts, "*.jsonl").relative_to(folder)
        command = command.replace("transcripts/<run>.jsonl", str(run))
        command = command.replace("RUN.jsonl", str(run))
    if "<time>" in command:
        stages = newest(transcripts, "riverside-park-seed1-*/").relative_to(folder)
        command = command.replace("transcripts/riverside-park-seed1-<time>/", f"{stages}/")
    return command


@pytest.mark.parametrize("doc", DOCS)
def test_every_command_in_the_doc_runs_as_written(doc: str, tmp_path: Path) -> None:
    folder, env = workspace(tmp_path)
    ran = 0
    for written in doc_commands(doc):
        if written in CANNOT_RUN:
            continue
        needs_run = "<run>" in written or "RUN.jsonl" in written
        if needs_run and not list((folder / "transcripts").glob("*.jsonl")):
            subprocess.run(["negotiate", "run", "rd-joint-venture", "--seed", "1"],
                           cwd=folder, env=env, capture_output=True, timeout=120, check=True)
        command = with_real_paths(written, folder)
        done = subprocess.run(command, shell=True, cwd=folder, env=env, capture_output=True,
                              text=True, timeout=120, stdin=subprocess.DEVNULL)
        assert done.returncode == 0, (
            f"{doc}: `{written}` exited {done.returncode}\n"
            f"{done.stdout[-2000:]}\n{done.stderr[-2000:]}"
        )
        assert "Traceback" not in done.stderr, f"{doc}: `{written}`\n{done.stderr}"
        ran += 1
    assert ran or not doc_commands(doc) or all(c in CANNOT_RUN for c in doc_commands(doc))


def test_every_command_that_cannot_run_is_still_in_the_docs() -> None:
    written = {command for doc in DOCS for command in doc_commands(doc)}
    assert set(CANNOT_RUN) <= written, sorted(set(CANNOT_RUN) - written)


# --- The YAML blocks that are whole files load as such; fragments are run above ---------

def test_the_readme_tournament_block_is_a_complete_tournament_file(tmp_path: Path) -> None:
    block = next(b for b in yaml_blocks("README.md") if b.startswith("scenarios:"))
    (tmp_path / "t.yaml").write_text(block)
    config = load_config(tmp_path / "t.yaml")
    assert config.seeds == 2 and len(jobs(config)) > 0


def test_the_campaign_guide_block_is_the_shipped_campaign_file_abridged() -> None:
    # The guide elides the joining party's preferences ("..."), so it is not a whole file:
    # every other line must be a line of campaigns/riverside-park.yaml, which runs above.
    def lines(text: str) -> list[str]:
        return [re.sub(r"\s+#\s.*$", "", line).rstrip() for line in text.splitlines()]

    block = next(b for b in yaml_blocks("docs/campaigns.md") if b.startswith("id:"))
    shipped = set(lines((REPO / "campaigns" / "riverside-park.yaml").read_text()))
    shipped.add("agents: {}")  # an optional field the guide shows at its default
    drifted = [line for line in lines(block) if "..." not in line and line not in shipped]
    assert drifted == []
