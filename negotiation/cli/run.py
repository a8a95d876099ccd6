"""Running negotiations: ``run`` and ``resume``, and the live view both print."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from negotiation.cli.common import (
    OnIdle,
    UsageError,
    console,
    error_console,
    load_prices,
    parse_agent_overrides,
)
from negotiation.cli.output import JsonFlag, emit
from negotiation.errors import AGENT_FAILED, RefusedError
from negotiation.safe_text import for_terminal

if TYPE_CHECKING:
    from negotiation.engine import RunResult
    from negotiation.model import Scenario


def run(
    scenario_path: Annotated[str, typer.Argument(
        metavar="SCENARIO", help="A scenario file, or the name of a shipped scenario.")],
    seed: Annotated[int, typer.Option(help="Seed for every random choice.")] = 0,
    rounds: Annotated[int | None, typer.Option(
        min=1, help="Deadline in rounds (default: the scenario's).")] = None,
    agent: Annotated[list[str] | None, typer.Option(
        "--agent", metavar="ORG=STRATEGY",
        help="Choose an organisation's negotiator, e.g. vendor=tit_for_tat. Repeatable.")] = None,
    out: Annotated[Path, typer.Option(help="Folder for the transcript.")] = Path("transcripts"),
    quiet: Annotated[bool, typer.Option("--quiet", "-q",
                                        help="Print only the outcome.")] = False,
    human: Annotated[str | None, typer.Option(
        metavar="ORG", help="Take this organisation's seat yourself, at the terminal.")] = None,
    record: Annotated[Path | None, typer.Option(
        help="LLM agents: store every request/reply pair in this file.")] = None,
    replay: Annotated[Path | None, typer.Option(
        help="LLM agents: answer from this recording, offline; refused when it was "
             "recorded with another scenario, seed or agent set.")] = None,
    replay_anyway: Annotated[bool, typer.Option(
        "--replay-anyway", help="Replay even a recording made with another scenario, "
                                "seed or agent set (requests it lacks fail the run).")
    ] = False,
    budget_calls: Annotated[int | None, typer.Option(
        min=1, help="LLM agents: at most this many HTTP requests to the model, every "
                    "attempt counted (retries and failed requests too), not turns.")] = None,
    budget_tokens: Annotated[int | None, typer.Option(
        min=1, help="LLM agents: at most this many tokens; each call's max_tokens is "
                    "capped so the budget cannot be exceeded.")] = None,
    budget_cost: Annotated[float | None, typer.Option(
        min=0, help="LLM agents: at most this many US dollars, capped like "
                    "--budget-tokens (needs --prices).")] = None,
    prices: Annotated[Path | None, typer.Option(
        help="YAML price table: MODEL: {input: USD per 1M tokens, output: USD per 1M}.")
    ] = None,
    driver: Annotated[str, typer.Option(
        help="auto: the graph when the run can pause (--human, --signoff inline), else the "
             "plain loop, recording LLM replies beside the transcript; graph: durable "
             "LangGraph run with SQLite checkpoints; plain: the fastest loop, nothing but "
             "the transcript.  Every run resumes from its transcript.")] = "auto",
    signoff: Annotated[str, typer.Option(
        help="later: sign off with 'negotiate review' at any time; inline: the run pauses "
             "for sign-off (graph driver) and 'negotiate review' resumes it.")] = "later",
    pace: Annotated[float, typer.Option(
        min=0, help="Seconds to pause between turns, to watch a run unfold.")] = 0.0,
    protocol: Annotated[str | None, typer.Option(
        help="Override the scenario's protocol, e.g. mediated_single_text.")] = None,
    anyway: Annotated[bool, typer.Option(
        "--anyway", help="Run even when no outcome suits every party (no zone of possible "
                         "agreement); the outcome then records that verdict.")] = False,
    idle_timeout: Annotated[float | None, typer.Option(
        min=1, help="With --human: seconds you may take for a turn; then --on-idle decides "
                    "what happens to it (the transcript records it).")] = None,
    on_idle: Annotated[OnIdle, typer.Option(
        help="With --idle-timeout: 'strategy' (the idle strategy plays that turn; its "
             "rationale says so) or 'pass' (no move: a 'passed' event; the standing offer "
             "stays).")] = OnIdle.strategy,
    idle_strategy: Annotated[str, typer.Option(
        help="With --idle-timeout: the strategy that plays an idle turn.")] = "conceder",
    as_json: JsonFlag = False,
) -> None:
    """Run a negotiation and write its hash-chained transcript.  A scenario with no zone of
    possible agreement is refused (exit 2) with the reasons, unless --anyway."""
    import anyio

    from negotiation.engine import (
        HUMAN,
        LLMOptions,
        agent_specs,
        new_transcript_path,
        run_scenario,
    )
    from negotiation.idle import IdlePolicy, timed_answer
    from negotiation.scenario import load_scenario
    from protocols import get_protocol

    scenario = load_scenario(scenario_path)
    if protocol is not None:
        get_protocol(protocol)  # fail now, with the list of choices, if it is unknown
        scenario = scenario.model_copy(update={"protocol": scenario.protocol.model_copy(
            update={"name": protocol})})
    overrides = parse_agent_overrides(agent or [])
    if human is not None:
        if human not in scenario.party_ids:
            raise UsageError(f"--human '{human}' is not an organisation of {scenario.id}; "
                             f"choose one of {scenario.party_ids}")
        overrides[human] = HUMAN
    if human is not None and as_json:
        raise UsageError("--human takes turns at the terminal; leave out --json (the "
                         "transcript records the run for scripts)")
    if driver not in DRIVERS:
        raise UsageError(f"--driver must be auto, graph or plain, not '{driver}'")
    if signoff not in {"later", "inline"}:
        raise UsageError(f"--signoff must be later or inline, not '{signoff}'")
    if signoff == "inline" and driver == "plain":
        raise UsageError("--signoff inline pauses a durable run: use it with --driver graph "
                         "(or auto)")
    if record is not None and replay is not None:
        raise UsageError("--record and --replay exclude each other: record a live run, then "
                         "replay it")
    if replay_anyway and replay is None:
        raise UsageError("--replay-anyway goes with --replay FILE")
    if replay is not None and not replay.is_file():
        raise UsageError(f"--replay {replay}: no such recording")
    if idle_timeout is not None:
        check_idle(idle_timeout, idle_strategy, human, driver)
    elif on_idle is not OnIdle.strategy or idle_strategy != "conceder":
        raise UsageError("--on-idle and --idle-strategy say what happens after "
                         "--idle-timeout: give it too")
    if budget_cost is not None and prices is None:
        raise UsageError("--budget-cost needs --prices FILE to know what a token costs")
    policy = None if idle_timeout is None else IdlePolicy(idle_timeout, on_idle.value,
                                                          idle_strategy)
    options = {**(zopa_verdict(scenario, seed, anyway) or {}),
               **({} if policy is None else {"idle": policy.record()})} or None
    durable = driver == "graph" or (driver == "auto" and can_pause(
        agent_specs(scenario, overrides), signoff == "inline"))
    path = new_transcript_path(out, scenario, seed)
    show = live_view(scenario, seed, rounds or scenario.protocol.rounds, quiet or as_json,
                     visible={human} if human else None, as_json=as_json)
    person = terminal_seat() if human is not None else None
    answer = None if person is None or policy is None else timed_answer(
        person, policy, seed, tell_person)

    async def negotiate() -> RunResult:
        from agents.budget import Budget

        llm = LLMOptions(budget=Budget(max_calls=budget_calls, max_tokens=budget_tokens,
                                       max_cost=budget_cost, prices=load_prices(prices)),
                         record=record, replay=replay, replay_anyway=replay_anyway)
        if not durable:
            if driver == "auto":  # what a durable run does up front, without LangGraph
                from negotiation.run_files import calls_path, check_writable

                check_writable(path.parent)
                if record is None and replay is None:  # a resumed run does not pay twice
                    llm = replace(llm, record=calls_path(path))
            return await run_scenario(scenario, seed=seed, rounds=rounds, agents=overrides,
                                      transcript=path, on_event=show, llm=llm, person=person,
                                      options=options, pace=pace)
        from negotiation.graph import start_run

        return await start_run(scenario, transcript=path, seed=seed, rounds=rounds,
                               agents=overrides, signoff_inline=signoff == "inline",
                               pace=pace, llm=llm, on_event=show, person=person,
                               options=options, answer=answer)

    try:
        result = anyio.run(negotiate)
    except KeyboardInterrupt:
        raise interrupted(path) from None
    finish_view(scenario, result, signoff == "inline", as_json=as_json, seed=seed)


def interrupted(path: Path) -> typer.Exit:
    """Ctrl-C stopped the run: say so and how to continue it (exit 130, as shells do)."""
    if not path.exists():  # stopped while the run was being set up: there is no run yet
        error_console().print("\n[bold yellow]Aborted[/] before the run started: nothing "
                              "was written.")
        return typer.Exit(130)
    error_console().print(f"\n[bold yellow]Aborted.[/] {for_terminal(str(path))} ends with "
                          "an 'aborted' event and still verifies. Continue it with: "
                          f"negotiate resume {for_terminal(str(path))}")
    return typer.Exit(130)


#: ``--driver`` choices: ``auto`` picks one of the other two for each run (:func:`can_pause`).
DRIVERS = ("auto", "graph", "plain")


def can_pause(specs: Mapping[str, str], inline_signoff: bool) -> bool:
    """Whether a run can pause and so takes the durable graph under ``--driver auto``: a
    person's seat (each of their turns is a pause) or an inline sign-off.  Any other run
    takes the plain loop, which starts without LangGraph; it resumes from its transcript
    all the same."""
    from negotiation.engine import HUMAN

    return inline_signoff or HUMAN in specs.values()


def check_idle(timeout: float, strategy: str, human: str | None, driver: str) -> None:
    """Refuse an idle timeout the run cannot honour, before anything is written."""
    from negotiation.idle import check_settings

    if human is None:
        raise UsageError("--idle-timeout times a person's turns: use it with --human ORG")
    if driver == "plain":
        raise UsageError("--idle-timeout passes or hands over a paused turn: use it with "
                         "--driver graph (or auto)")
    check_settings(timeout, strategy)


def tell_person(said: str) -> None:
    """What the idle timeout does, told to the person at this terminal."""
    console.print(f"[yellow]{for_terminal(said)}[/]")


class PartnershipNotJustified(RefusedError):
    """The scenario has no zone of possible agreement: no outcome suits every party."""


def zopa_verdict(scenario: Scenario, seed: int, anyway: bool) -> dict[str, Any] | None:
    """Check the zone of possible agreement before the first move, exactly or on a sample
    as ``analyze`` does: refuse when there is none, or, ``anyway``, the header options that
    carry the verdict into the outcome."""
    from negotiation.session import zopa_verdict_of

    verdict = zopa_verdict_of(scenario, seed)
    if verdict is None:
        return None
    if not anyway:
        lines = "".join(f"\n  - {reason}" for reason in verdict["reasons"])
        raise PartnershipNotJustified(
            f"partnership not justified: {scenario.id} has no zone of possible agreement "
            f"({verdict['method']}), so no outcome suits every party:{lines}\nChange the "
            "scenario (see 'negotiate analyze'), or rehearse it anyway with --anyway.")
    return {"zopa": verdict}


def live_view(scenario: Scenario, seed: int, rounds: int, quiet: bool,
              visible: set[str] | None = None, *, as_json: bool = False
              ) -> Callable[[dict[str, Any]], None]:
    """Print events as they happen, the moves as a conversation; ``visible`` (a human's
    seat) limits whose utilities and blocked moves are shown; under ``--json`` only agent
    errors are shown, on stderr."""
    from negotiation import render
    from negotiation.conversation import utterance
    from negotiation.events import (
        Blocked,
        Error,
        EventType,
        Header,
        MediatorText,
        Move,
        Passed,
        parse_event,
    )
    from negotiation.render_conversation import ConversationStyle, turn_view

    style = ConversationStyle(scenario.party_ids, visible)

    def show(record: dict[str, Any]) -> None:
        if quiet and record["type"] != EventType.ERROR:
            return  # nothing to show: not even typed
        event = parse_event(record, record["seq"] + 1)
        if isinstance(event, Header) and not quiet:
            console.print(render.scenario_panel(scenario, event.agents, seed, rounds))
        elif isinstance(event, Move | Blocked | MediatorText | Passed) and not quiet:
            if isinstance(event, Blocked) and visible is not None \
                    and event.party not in visible:
                return  # never delivered: the other seats do not see it either
            console.print(turn_view(utterance(scenario, event), style))
        elif isinstance(event, Error):
            (error_console() if as_json else console).print(
                          f"[bold red]{for_terminal(event.party, one_line=True)}: "
                          f"{for_terminal(event.error, one_line=True)}[/]")

    return show


def terminal_seat() -> Any:
    """The person at this terminal, one for the whole run whichever the driver."""
    from agents.human import HumanAgent

    return HumanAgent(console)


def finish_view(scenario: Scenario, result: RunResult, inline_signoff: bool, *,
                as_json: bool = False, seed: int = 0) -> None:
    from negotiation import render

    if as_json:
        from negotiation.cli.output import run_json

        emit(run_json(result, scenario_id=scenario.id, seed=seed))
        if result.failure is not None:
            error_console().print(f"[bold red]The run ended because an agent failed:[/] "
                                  f"{for_terminal(result.failure)}", soft_wrap=True)
            raise typer.Exit(AGENT_FAILED)
        return
    console.print()
    outcome = result.transcript.outcome
    assert outcome is not None, "a finished run records its outcome"
    console.print(render.outcome_view(scenario, outcome, result.agents))
    print_usage(result.transcript.events, result.agents)
    console.print(f"\nTranscript: [bold]{for_terminal(str(result.path))}[/]  (check it with "
                  f"[cyan]negotiate verify {for_terminal(str(result.path))}[/])")
    if inline_signoff and result.status == "agreement":
        console.print(f"[bold yellow]Paused for sign-off.[/] Decide with [cyan]negotiate "
                      f"review {for_terminal(str(result.path))}[/]")
    elif result.status == "agreement":
        console.print(f"The agreement is [bold]pending sign-off[/]: review it with "
                      f"[cyan]negotiate review {for_terminal(str(result.path))}[/]")
    if result.failure is not None:
        error_console().print(f"[bold red]The run ended because an agent failed:[/] "
                              f"{for_terminal(result.failure)}", soft_wrap=True)
        raise typer.Exit(AGENT_FAILED)


def print_usage(events: Iterable[object], agents: Mapping[str, str]) -> None:
    """Tokens in/out and cost per party and in total, when the run had LLM calls."""
    from negotiation.render_conversation import usage_of_run

    table = usage_of_run(events, agents)
    if table is not None:
        console.print(table)


def resume(
    transcript: Annotated[str, typer.Argument(
        metavar="RUN", help="The interrupted run: its transcript file or its run id.")],
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Print only the outcome.")
                     ] = False,
    pace: Annotated[float, typer.Option(min=0, help="Seconds to pause between turns.")] = 0.0,
    as_json: JsonFlag = False,
) -> None:
    """Continue an interrupted run (Ctrl-C, crash, killed process) where it stopped, with
    the driver it ran on: the durable graph when it has checkpoints or can pause, else the
    plain loop."""
    import anyio

    from negotiation import render

    path = Path(transcript)
    if not path.exists() and (Path("transcripts") / f"{transcript}.jsonl").exists():
        path = Path("transcripts") / f"{transcript}.jsonl"
    if not path.exists():
        raise UsageError(f"{transcript}: no such run; give a transcript path or a run id from "
                         "'negotiate transcripts'")
    from negotiation.engine import resumable_header

    header = load_header(path)
    scenario = resumable_header(header, path)[1]  # refused unless negotiate wrote it
    seed, rounds = header["seed"], header["protocol"]["rounds"]
    person = terminal_seat() if "human" in header["agents"].values() else None
    if person is not None and as_json:
        raise UsageError("this run has a human seat, which takes turns at the terminal; "
                         "resume it without --json")
    from negotiation.idle import IdlePolicy, timed_answer

    policy = IdlePolicy.recorded(header.get("options", {}))  # its turns stay timed
    answer = None if person is None or policy is None else timed_answer(
        person, policy, seed, tell_person)
    if not (quiet or as_json):  # the header is on disk already: the live view never sees it
        console.print(render.scenario_panel(scenario, header["agents"], seed, rounds))
    show = live_view(scenario, seed, rounds, quiet or as_json, as_json=as_json)
    notes = error_console() if as_json else console

    def resumed(caught_up: int) -> None:
        notes.print(f"[bold]Resumed[/] after {caught_up} recorded events.")

    async def continue_run() -> RunResult:
        from negotiation.run_files import checkpoint_path

        inline = header.get("options", {}).get("signoff") == "inline"
        if checkpoint_path(path).exists() or can_pause(header["agents"], inline):
            from negotiation.graph import resume_run

            return await resume_run(path, pace=pace, person=person, on_event=show,
                                    on_resumed=resumed, answer=answer)
        # A run of the plain loop continues on it: the transcript is all it needs.
        from negotiation.engine import reopen_run

        async with reopen_run(path, person=person, on_event=show, on_resumed=resumed) as run:
            return await run.play(pace)

    try:
        result = anyio.run(continue_run)
    except KeyboardInterrupt:
        raise interrupted(path) from None
    finish_view(scenario, result, header.get("options", {}).get("signoff") == "inline",
                as_json=as_json, seed=seed)


def load_header(path: Path) -> dict[str, Any]:
    from negotiation.events import EventType
    from negotiation.transcript import negotiation_header

    try:
        with path.open(encoding="utf-8") as handle:
            header = json.loads(handle.readline())
    except (OSError, json.JSONDecodeError) as error:
        raise UsageError(f"{path}: not a transcript ({error})") from None
    if not isinstance(header, dict) or header.get("type") != EventType.HEADER:
        raise UsageError(f"{path}: not a transcript (no header)")
    return negotiation_header([header], path)

