"""Text from scenario files, transcripts and agents is shown as data: a terminal never obeys
it, Rich never reads it as markup, a charter never renders it as HTML or Markdown."""

from __future__ import annotations

import html
import io
import os
import re
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import anyio
import pexpect
import pytest
import yaml
from hypothesis import example, given
from hypothesis import strategies as st
from markdown_it import MarkdownIt
from rich.console import Console
from rich.text import Text
from typer.testing import CliRunner

from agents.base import Agent, View
from negotiation.charter import render_html, write_charter
from negotiation.cli import app
from negotiation.devtools.llm_server import ScriptedServer, reply_json
from negotiation.ecosystem import EcosystemMap
from negotiation.engine import Negotiation, agent_specs, build_agents
from negotiation.model import Action, Ecosystem
from negotiation.render import campaign_view
from negotiation.safe_text import for_markdown, for_terminal, plain
from negotiation.scenario import load_scenario
from negotiation.transcript import TranscriptWriter
from tests.conftest import REPO
from tests.test_cli import NEGOTIATE, negotiate

#: Everything a hostile scenario author or agent might try at once: Rich markup, a window
#: title (OSC … BEL), a screen clear (CSI), HTML, a bidi override, Markdown that would fake
#: a ratification, an emoji code, and a mathtext formula that would break a plot.
EVIL = ("[/] [bold]loud \x1b]0;pwned\x07\x1b[2J\x1b[31m <script>alert(1)</script> "
        "<img src=x onerror=alert(1)> \u202eevil :thumbs_up: $\\frac{$\n"
        "# RATIFIED by Board\n---\n| fake | row |\n"
        "> **RATIFIED** by Board [click](javascript:alert(1))")
#: An LLM model name with markup: it reaches the screen through the agent column.
EVIL_MODEL = "[/]bad[bold]"
OBEYED = ("\x1b", "\x07", "\u202e")


def assert_shown_as_data(output: str) -> None:
    """Without a terminal and with NO_COLOR, Rich writes no escape of its own: any ESC or
    BEL would have come from the data."""
    for character in OBEYED:
        assert character not in output, repr(character)
    assert "Traceback" not in output and "MarkupError" not in output
    assert "[/] [bold]loud" in output                 # the markup is shown, literally
    assert ":thumbs_up:" in output                    # and so is the emoji code


def hostile_yaml() -> str:
    data = yaml.safe_load((REPO / "scenarios" / "rd-joint-venture.yaml").read_text())
    data["title"] = f"Title {EVIL}"
    data["description"] = f"Description {EVIL}"
    for org in data["organizations"]:
        org["name"] = f"{org['id']} {EVIL}"
        org["mission"] = f"Mission {EVIL}"
        org["capabilities"] = [f"Capability {EVIL}"]
        org["needs"] = [f"Need {EVIL}"]
        org["contribution"]["description"] = f"Contribution {EVIL}"
        org["preferences"]["batna"] = f"BATNA {EVIL}"
        for red_line in org["preferences"]["red_lines"]:
            red_line["reason"] = f"Reason {EVIL}"
    for issue in data["issues"]:
        issue["name"] = f"{issue['id']} {EVIL}"
        for option in issue.get("labels", {}):
            issue["labels"][option] = f"{option} {EVIL}"
        if issue["kind"] == "split":
            issue["pot"] = f"Pot {EVIL}"
    return yaml.safe_dump(data, allow_unicode=True)


@dataclass
class HostileRationale:
    """A real rule-based negotiator whose every rationale is hostile text."""

    inner: Agent

    async def act(self, view: View) -> Action:
        action = await self.inner.act(view)
        return action.model_copy(update={"rationale": f"Rationale {EVIL}"})


@dataclass(frozen=True)
class Runs:
    scenario_file: Path
    hostile: Path      # hostile scenario, hostile rationales, a model name with markup
    benign: Path       # the shipped scenario, same seed and strategies


def record(path: Path, scenario_file: Path | str, *, hostile: bool) -> Path:
    scenario = load_scenario(scenario_file)
    specs = agent_specs(scenario, {})
    agents: dict[str, Agent] = dict(build_agents(specs, 0, scenario))
    if hostile:
        agents = {party: HostileRationale(agent) for party, agent in agents.items()}
        specs = {**specs, "voltaic": f"llm:{EVIL_MODEL}\x1b]0;x\x07"}

    async def run() -> None:
        with TranscriptWriter(path) as writer:
            await Negotiation(scenario).run(agents, seed=0, writer=writer, specs=specs)

    anyio.run(run)
    return path


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Runs:
    folder = tmp_path_factory.mktemp("hostile")
    scenario_file = folder / "hostile.yaml"
    scenario_file.write_text(hostile_yaml(), encoding="utf-8")
    return Runs(scenario_file, record(folder / "hostile.jsonl", scenario_file, hostile=True),
                record(folder / "benign.jsonl", "rd-joint-venture", hostile=False))


def invoke(*args: str) -> str:
    result = CliRunner().invoke(app, list(args), env={"NO_COLOR": "1", "COLUMNS": "160"})
    assert result.exit_code == 0, result.output
    return result.output


# The one function, tested on its own ---------------------------------------------------

@pytest.mark.parametrize(("raw", "shown"), [
    ("a\x1b]0;window title\x07b", "ab"),             # OSC ended by BEL
    ("a\x1b]8;;http://x\x1b\\link\x1b]8;;\x1b\\b", "alinkb"),  # OSC 8 hyperlink, ended by ST
    ("a\x1b[2Jb\x1b[1;31mc", "abc"),                 # CSI: clear screen, colours
    ("a\x9b2Jb", "ab"),                              # 8-bit CSI
    ("a\x1bcb\x1b(Bc", "abc"),                       # two-character escapes (reset, charset)
    ("a\x1b", "a"),                                  # a lone ESC
    ("a\x00b\x08c\rd\x7fe\x85f", "abcdef"),          # C0, DEL, C1
    ("a\u202eb\u2066c\u2069d", "abcd"),              # bidi override and isolates
    ("line one\n\tline two", "line one\n\tline two"),  # newline and tab are text
    ("Zürich · 北京 · ✓", "Zürich · 北京 · ✓"),
])
def test_plain_removes_what_a_terminal_would_obey(raw: str, shown: str) -> None:
    assert plain(raw) == shown


def test_one_line_text_cannot_start_a_line_of_its_own() -> None:
    assert plain("ok\nStatus: ratified\tnow", one_line=True) == "ok Status: ratified now"


hostile_text = st.text(st.sampled_from("[]/\\#*_-=+>|`<&!():;.1 \n\t\x1b\x07\x9b\u202eab")
                       ) | st.text()


@given(hostile_text)
def test_plain_text_holds_no_control_character(text: str) -> None:
    assert not re.search(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]",
                         plain(text))


@example("\\[1] \\[")
@example("ends with \\\\")
@given(hostile_text)
def test_rich_prints_for_terminal_text_exactly_as_plain_text(text: str) -> None:
    shown = Text.from_markup(f"[bold]{for_terminal(text)}[/] after", emoji=False)
    assert shown.plain == f"{plain(text)} after"
    console = Console(file=io.StringIO(), width=60, emoji=False)
    console.print(f"[bold]{for_terminal(text)}[/] after")  # never a MarkupError


@pytest.mark.parametrize("multiline", [False, True])
@given(text=hostile_text)
def test_markdown_text_renders_as_the_same_text_and_nothing_else(text: str,
                                                                 multiline: bool) -> None:
    rendered = MarkdownIt("commonmark", {"html": False}).enable("table").render(
        for_markdown(text, multiline=multiline))
    assert set(re.findall(r"<(/?\w+)", rendered)) <= {"p", "/p"}
    visible = html.unescape(re.sub(r"</?p>", " ", rendered))
    assert visible.split() == plain(text).split()


# What reaches the screen ---------------------------------------------------------------

@pytest.mark.parametrize("command", ["report", "review", "verify"])
def test_transcript_commands_show_hostile_text_literally(runs: Runs, command: str) -> None:
    output = invoke(command, str(runs.hostile))
    if command != "verify":
        assert_shown_as_data(output)
        assert f"llm:{EVIL_MODEL}" in output
    assert not any(character in output for character in OBEYED)


def test_transcripts_lists_a_hostile_transcript_literally(runs: Runs) -> None:
    output = invoke("transcripts", str(runs.hostile.parent))
    assert "hostile.jsonl" in output and "benign.jsonl" in output
    assert not any(character in output for character in OBEYED)


@pytest.mark.parametrize("command", [("scenarios", "validate"), ("analyze",)])
def test_scenario_commands_show_hostile_text_literally(runs: Runs,
                                                       command: tuple[str, ...]) -> None:
    output = invoke(*command, str(runs.scenario_file))
    for character in OBEYED:
        assert character not in output
    assert "Title [/] [bold]loud" in output


def test_an_error_that_quotes_a_hostile_value_shows_it_literally(tmp_path: Path) -> None:
    data = yaml.safe_load(hostile_yaml())
    data["organizations"][0]["preferences"]["red_lines"][0]["value"] = f"option {EVIL}"
    broken = tmp_path / "broken.yaml"
    broken.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    result = CliRunner().invoke(app, ["scenarios", "validate", str(broken)],
                                env={"NO_COLOR": "1", "COLUMNS": "160"})
    assert result.exit_code == 2
    assert_shown_as_data(result.output)
    assert "is not an option of" in result.output


def test_campaign_summary_shows_hostile_stage_text_literally() -> None:
    stage = {"index": 0, "id": f"pilot {EVIL}", "kind": "negotiate", "status": "agreement",
             "reason": f"reason {EVIL}", "rounds": 3, "transcript": f"t {EVIL}.jsonl",
             "terms": {f"issue {EVIL}": f"value {EVIL}"}, "parties": [f"party {EVIL}"],
             "values": {f"party {EVIL}": 0.5}, "trust": {f"party {EVIL}": {"b": 0.4}}}
    manifest = {"title": f"Campaign {EVIL}", "seed": 1, "stages": [stage],
                "stopped": f"stopped {EVIL}"}
    console = Console(file=io.StringIO(), width=200, emoji=False)
    console.print(campaign_view(manifest))
    output = console.file.getvalue()  # type: ignore[attr-defined]
    assert_shown_as_data(output)


@pytest.fixture
def hostile_llm() -> Iterator[ScriptedServer]:
    """An OpenAI-compatible server whose model walks away with a hostile rationale."""
    move = {"kind": "walk_away", "rationale": f"LLM says {EVIL}"}
    with ScriptedServer(lambda request, number: reply_json(move)) as server:
        yield server


def test_run_shows_a_hostile_scenario_model_name_and_llm_reply_literally(
        runs: Runs, hostile_llm: ScriptedServer, tmp_path: Path) -> None:
    env = {**os.environ, "OPENAI_BASE_URL": hostile_llm.base_url, "OPENAI_API_KEY": "sk-test",
           "NO_COLOR": "1", "COLUMNS": "160"}
    done = subprocess.run([str(NEGOTIATE), "run", str(runs.scenario_file), "--driver", "plain",
                           "--agent", f"voltaic=llm:{EVIL_MODEL}", "--rounds", "3",
                           "--out", str(tmp_path)], capture_output=True, text=True,
                          env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    assert_shown_as_data(done.stdout)
    assert f"llm:{EVIL_MODEL}" in done.stdout and "LLM says [/] [bold]loud" in done.stdout
    assert not any(character in done.stderr for character in OBEYED)


def test_review_in_a_real_process_shows_hostile_text_literally(runs: Runs) -> None:
    done = negotiate("review", str(runs.hostile))
    assert done.returncode == 0, done.stderr
    assert_shown_as_data(done.stdout)
    assert "Rationale [/] [bold]loud" in done.stdout


def test_the_human_seat_shows_a_hostile_brief_literally(runs: Runs, tmp_path: Path) -> None:
    env = {**os.environ, "NO_COLOR": "1", "COLUMNS": "160"}
    child = pexpect.spawn(str(NEGOTIATE), ["run", str(runs.scenario_file), "--human", "kestrel",
                                           "--rounds", "2", "--out", str(tmp_path)],
                          encoding="utf-8", timeout=60, env=env, dimensions=(60, 160))
    child.expect("Your move")
    seen = child.before
    child.sendline("counter")
    child.expect(r"1\. voltaic")                    # the options of the first issue
    child.expect(r"\[1/2/3/4\]")
    seen += child.before
    child.sendintr()
    child.expect(pexpect.EOF)
    child.close()
    # On a terminal Rich writes its own styles; what must never appear are the data's.
    for sequence in ("\x1b]0;pwned", "\x1b[2J", "\x1b[31m", "\x07", "\u202e"):
        assert sequence not in seen
    assert "Confidential brief: you are kestrel" in seen
    assert "BATNA [/] [bold]loud" in seen and "Reason [/] [bold]loud" in seen


# What reaches the files ----------------------------------------------------------------

#: Block structure only: hostile text may change what the charter says, never its shape.
STRUCTURE = {"heading_open", "blockquote_open", "table_open", "tr_open", "hr", "html_block",
             "html_inline", "link_open", "image", "bullet_list_open", "ordered_list_open",
             "code_block", "fence", "em_open", "strong_open"}


def structure(markdown: str) -> list[str]:
    parser = MarkdownIt("commonmark", {"html": True}).enable("table")  # as lenient as any
    found = []
    for token in parser.parse(markdown):
        found += [token.type] if token.type in STRUCTURE else []
        found += [child.type for child in token.children or [] if child.type in STRUCTURE]
    return found


def test_the_markdown_charter_keeps_its_shape_whatever_the_data(runs: Runs) -> None:
    hostile = write_charter(runs.hostile, "md").read_text(encoding="utf-8")
    benign = write_charter(runs.benign, "md").read_text(encoding="utf-8")
    assert structure(hostile) == structure(benign)
    assert structure(hostile).count("blockquote_open") == 1   # the one real status line
    for raw in ("<script", "<img", "[click](javascript", "\n# RATIFIED", "\n---\n", "\x1b", "\x07"):
        assert raw not in hostile
    assert "&lt;script&gt;" in hostile and "\\[click\\](javascript" in hostile
    assert "**PENDING SIGN-OFF**" in hostile


def test_the_html_charter_escapes_hostile_text(runs: Runs) -> None:
    page = render_html(runs.hostile)
    assert "<script" not in page and "<img src=x" not in page and "<a " not in page
    # The two plots (offers in utility space, utility by round), both data URIs: nothing else.
    assert page.count("<img ") == 2
    assert page.count('<img src="data:image/png;base64,') == 2
    assert page.count("<blockquote>") == 1 and page.count("<h1>") == 1
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert not any(character in page for character in OBEYED)
    assert "<title>Partnership charter: Title [/] [bold]loud" in page


def test_a_mermaid_graph_keeps_hostile_names_inside_their_labels() -> None:
    ecosystem = Ecosystem.model_validate({"synergy": 1, "coordination_cost": 0, "actors": [
        {"id": "a", "name": f'A"] --> b\nclick a "javascript:alert(1)" {EVIL}',
         "capabilities": [f'x" --> c["{EVIL}'], "needs": [], "resources": 1},
        {"id": "b", "name": "B", "capabilities": [], "needs": [f'x" --> c["{EVIL}'],
         "resources": 1}]})
    lines = EcosystemMap(ecosystem).mermaid().splitlines()
    assert len(lines) == 4 and lines[0] == "graph LR"
    assert re.fullmatch(r'    a\["[^"\n]*"\]', lines[1]) and lines[2] == '    b["B"]'
    assert re.fullmatch(r'    a -- "[^"]*" --> b', lines[3])
    assert "#quot;" in lines[1] and not any(c in lines[1] for c in OBEYED)


def test_map_draws_hostile_actor_names_literally(tmp_path: Path) -> None:
    data = yaml.safe_load((REPO / "scenarios" / "park-redevelopment.yaml").read_text())
    for actor in data["ecosystem"]["actors"]:
        actor["name"] = f"{actor['id']} {EVIL}"
    scenario = tmp_path / "map.yaml"
    scenario.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    mermaid, png = tmp_path / "map.mmd", tmp_path / "map.png"
    output = invoke("map", str(scenario), "--png", str(png), "--mermaid", str(mermaid))
    assert not any(character in output for character in OBEYED)
    assert png.stat().st_size > 0                    # the $…$ in the names drew as text
    assert not any(character in mermaid.read_text() for character in OBEYED)
