"""The studio's web app (Starlette): pages, their JSON state, live updates as server-sent
events, and the few requests that change anything (set up, move, sign off).

Routes (``{token}`` is a seat's or the observer's secret link token)::

    GET  /                                   scenarios, with their public profiles
    GET  /setup/{key}                        seat assignment for one scenario (+ analysis)
    POST /rehearsals                         start a rehearsal → its secret links, once
    GET  /r/{id}/seat/{token}[/state|/events|/utility]
    POST /r/{id}/seat/{token}/move | /signoff
    GET  /r/{id}/observe/{token}[/state|/events|/charter]
    GET  /transcripts, /transcripts/{name}   past runs and a round-by-round replay
"""

from __future__ import annotations

import json
import secrets
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import (
    HTMLResponse,
    JSONResponse,
    RedirectResponse,
    Response,
    StreamingResponse,
)
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

from negotiation.errors import InputError, NegotiationError, RefusedError
from negotiation.events import EventType
from negotiation.model import Scenario
from negotiation.session import analysis_of
from negotiation.studio.guard import (
    CHARTER_POLICY,
    FACILITATOR_COOKIE,
    SecurityHeaders,
    TrustedHosts,
    csrf_ok,
    csrf_token,
    key_ok,
    same_site,
    valid_name,
    valid_token,
)
from negotiation.studio.rehearsal import Rehearsal
from negotiation.studio.seating import Table, brief, controls, evaluate, observer_view, text
from negotiation.studio.service import Studio
from negotiation.transcript import verify

HERE = Path(__file__).parent
#: How often an idle event stream sends a comment, so that proxies keep it open.
KEEPALIVE_SECONDS = 15.0
#: The largest JSON request (a move or a sign-off) and the longest reason or comment: every
#: seat's page is sent the whole history again on each change.
MAX_BODY = 64 * 1024
MAX_TEXT = 2000


def create_app(studio: Studio) -> Starlette:
    """The app serving ``studio``; its lifespan runs the rehearsals' drivers."""
    templates = Jinja2Templates(directory=HERE / "templates")  # autoescape on for .html
    setup_key = secrets.token_bytes(32)

    def page(request: Request, template: str, status: int = 200, **context: Any) -> Response:
        return templates.TemplateResponse(request, template, context, status_code=status)

    def facilitator(request: Request) -> Response | None:
        """Let the facilitator in (``None``) or not: the link ``negotiate serve`` printed
        carries the key once, then a same-site cookie does; anyone else, a seat included,
        must not set up a rehearsal of their own to read the others' briefs."""
        key = studio.facilitator_key
        if key is None or key_ok(key, request.cookies.get(FACILITATOR_COOKIE)):
            return None
        if request.method == "GET" and key_ok(key, request.query_params.get("key")):
            entered = RedirectResponse(request.url.path, 303)
            entered.set_cookie(FACILITATOR_COOKIE, key, httponly=True, samesite="strict")
            return entered
        raise HTTPException(403, "this page is for the facilitator: open the link "
                                 "'negotiate serve' printed")

    def rehearsal_of(request: Request) -> Rehearsal:
        rid = request.path_params["rid"]
        rehearsal = studio.rehearsals.get(rid) if valid_name(rid) else None
        if rehearsal is None:
            raise HTTPException(404, "no such rehearsal")
        return rehearsal

    def seat_of(request: Request) -> tuple[Rehearsal, str]:
        rehearsal = rehearsal_of(request)
        token = request.path_params["token"]
        party = rehearsal.seat_of(token) if valid_token(token) else None
        if party is None:
            raise HTTPException(404, "no such seat")
        return rehearsal, party

    def observer_of(request: Request) -> Rehearsal:
        rehearsal = rehearsal_of(request)
        token = request.path_params["token"]
        if not (valid_token(token) and rehearsal.is_observer(token)):
            raise HTTPException(404, "no such observer link")
        return rehearsal

    def seat_key(rehearsal: Rehearsal, party: str) -> bytes:
        return rehearsal.sidecar.seats[party].encode()

    async def bounded_body(request: Request) -> bytes:
        """The body, refused past :data:`MAX_BODY` (however it is sent) before it is held."""
        declared = request.headers.get("content-length", "0")
        if not declared.isdigit() or int(declared) > MAX_BODY:
            raise HTTPException(413, "the request is too large")
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > MAX_BODY:
                raise HTTPException(413, "the request is too large")
        return bytes(body)

    async def posted_json(request: Request, key: bytes, scope: str) -> dict[str, Any]:
        """A state-changing JSON request, once it is known to come from the page itself."""
        if not same_site(request):
            raise HTTPException(403, "cross-site request refused")
        if request.headers.get("content-type", "").split(";")[0].strip() != \
                "application/json":
            raise HTTPException(415, "send JSON")
        try:
            body = json.loads(await bounded_body(request))
        except ValueError:
            raise HTTPException(400, "the request is not JSON") from None
        if not isinstance(body, dict) or not csrf_ok(key, scope, body.pop("csrf", None)):
            raise HTTPException(403, "missing or wrong CSRF token: reload the page")
        return body

    # --- pages ----------------------------------------------------------------------------

    async def index(request: Request) -> Response:
        if (gate := facilitator(request)) is not None:
            return gate
        return page(request, "index.html", listed=list(studio.catalogue.values()),
                    problems=studio.problems)

    async def setup(request: Request) -> Response:
        if (gate := facilitator(request)) is not None:
            return gate
        key = request.path_params["key"]
        try:
            scenario = studio.scenario(key) if valid_name(key) else None
        except LookupError:
            scenario = None
        if scenario is None:
            raise HTTPException(404, "no such scenario")
        analysis = await anyio.to_thread.run_sync(analysis_of, scenario)
        nash = analysis.nash
        return page(request, "setup.html", key=key, scenario=scenario,
                    choices=studio.seat_choices(), csrf=csrf_token(setup_key, "setup"),
                    idle_timeout=studio.idle_timeout, idle_strategy=studio.idle_strategy,
                    on_idle=studio.on_idle,
                    zopa=analysis.zopa_size, size=analysis.space.size,
                    blockers=list(analysis.blockers().values()),
                    nash=nash and Table(scenario).describe(nash.terms))

    async def create(request: Request) -> Response:
        if (gate := facilitator(request)) is not None:
            return gate
        if not same_site(request):
            raise HTTPException(403, "cross-site request refused")
        form = await request.form()
        if not csrf_ok(setup_key, "setup", form.get("csrf")):
            raise HTTPException(403, "missing or wrong CSRF token: reload the page")
        key = str(form.get("scenario", ""))
        if not valid_name(key) or key not in studio.catalogue:
            raise HTTPException(404, "no such scenario")
        scenario = studio.scenario(key)
        await anyio.to_thread.run_sync(analysis_of, scenario)  # the ZOPA verdict, off the loop
        seats = {party: str(form.get(f"seat-{party}", "")) for party in scenario.party_ids}
        rounds_text = str(form.get("rounds", "")).strip()
        try:
            rounds = int(rounds_text) if rounds_text else None
        except ValueError:
            raise InputError("the deadline must be a whole number of rounds") from None
        rehearsal, tokens, observer = studio.create(
            key, seats, rounds=rounds, on_idle=str(form.get("on_idle", "")) or None)
        base = str(request.base_url).rstrip("/")
        links = [{"party": party, "name": rehearsal.table.names[party],
                  "url": f"{base}/r/{rehearsal.id}/seat/{token}"}
                 for party, token in tokens.items()]
        return page(request, "links.html", rehearsal=rehearsal, links=links,
                    observer=f"{base}/r/{rehearsal.id}/observe/{observer}")

    async def seat(request: Request) -> Response:
        rehearsal, party = seat_of(request)
        scenario = rehearsal.scenario
        others = [org for org in scenario.public().organizations if org.id != party]
        base = f"/r/{rehearsal.id}/seat/{request.path_params['token']}"
        return page(request, "seat.html", rehearsal=rehearsal, party=party,
                    name=rehearsal.table.names[party], brief=brief(rehearsal.table, party),
                    others=others, controls=controls(rehearsal.table), base=base,
                    idle=rehearsal.idle_policy(),
                    title=text(scenario.title),
                    csrf=csrf_token(seat_key(rehearsal, party), "seat"))

    async def seat_state(request: Request) -> Response:
        rehearsal, party = seat_of(request)
        return JSONResponse(rehearsal.seat_state(party))

    async def seat_events(request: Request) -> Response:
        rehearsal, party = seat_of(request)
        return event_stream(request, rehearsal, lambda: rehearsal.seat_state(party))

    async def seat_utility(request: Request) -> Response:
        rehearsal, party = seat_of(request)
        try:
            terms = json.loads(request.query_params.get("terms", ""))
        except ValueError:
            return JSONResponse({"valid": False, "problem": "the terms are not JSON"}, 400)
        if not isinstance(terms, dict):
            return JSONResponse({"valid": False, "problem": "give every issue's value"}, 400)
        return JSONResponse(evaluate(rehearsal.table, party, terms))

    async def seat_move(request: Request) -> Response:
        rehearsal, party = seat_of(request)
        body = await posted_json(request, seat_key(rehearsal, party), "seat")
        rationale = str(body.get("rationale", "")).strip()
        if len(rationale) > MAX_TEXT:
            raise InputError(f"keep the reason under {MAX_TEXT} characters")
        move: dict[str, Any] = {"kind": body.get("kind"), "rationale": rationale}
        if body.get("kind") == "propose":
            move["offer"] = {"terms": body.get("terms")}
        rehearsal.submit(party, move)
        return JSONResponse({"ok": True})

    async def seat_signoff(request: Request) -> Response:
        rehearsal, party = seat_of(request)
        body = await posted_json(request, seat_key(rehearsal, party), "seat")
        decision = body.get("decision")
        if decision not in {"approve", "reject"}:
            raise InputError("decide approve or reject")
        await rehearsal.decide(party, approve=decision == "approve",
                               comment=str(body.get("comment", ""))[:MAX_TEXT])
        return JSONResponse({"ok": True})

    async def observe(request: Request) -> Response:
        rehearsal = observer_of(request)
        base = f"/r/{rehearsal.id}/observe/{request.path_params['token']}"
        return page(request, "observer.html", rehearsal=rehearsal, base=base,
                    public=rehearsal.scenario.public(), specs=rehearsal.specs)

    async def observe_state(request: Request) -> Response:
        return JSONResponse(observer_of(request).observer_state())

    async def observe_events(request: Request) -> Response:
        rehearsal = observer_of(request)
        return event_stream(request, rehearsal, rehearsal.observer_state)

    async def charter(request: Request) -> Response:
        rehearsal = observer_of(request)
        if not rehearsal.signoff_state(None)["ratified"]:
            raise HTTPException(409, "the charter is served once the agreement is ratified")
        from negotiation.charter import render_html  # matplotlib loads only here

        html = await anyio.to_thread.run_sync(render_html, rehearsal.transcript)
        return HTMLResponse(html, headers={"content-security-policy": CHARTER_POLICY})

    async def transcripts(request: Request) -> Response:
        if (gate := facilitator(request)) is not None:
            return gate
        runs = await anyio.to_thread.run_sync(studio.past_runs)
        return page(request, "transcripts.html", runs=runs)

    async def replay(request: Request) -> Response:
        if (gate := facilitator(request)) is not None:
            return gate
        name = request.path_params["name"]
        try:
            path = studio.past_run(name) if valid_name(name) else None
        except LookupError:
            path = None
        if path is None:
            raise HTTPException(404, "no such run")
        try:
            result = await anyio.to_thread.run_sync(verify, path)
        except NegotiationError:
            raise HTTPException(404, "not a negotiation transcript") from None
        if not result.events or result.events[0].get("type") != EventType.HEADER or \
                not isinstance(result.events[0].get("scenario"), dict):
            raise HTTPException(404, "not a negotiation transcript")
        table = Table(Scenario.model_validate(result.events[0]["scenario"]))
        seen = observer_view(table, result.events, None)
        last = max((line["round"] for line in seen["lines"]), default=1)
        try:
            upto = min(max(int(request.query_params.get("round", last)), 1), last)
        except ValueError:
            upto = last
        # While a run is still negotiated, its replay shows what every seat sees: a
        # blocked proposal (and its rationale) was never delivered to the others.
        lines = [line for line in seen["lines"] if line["round"] <= upto and
                 (seen["outcome"] is not None or line["kind"] != "blocked")]
        return page(request, "replay.html", name=name, title=text(table.scenario.title),
                    lines=lines, upto=upto, last=last, ok=result.ok,
                    outcome=seen["outcome"] if upto == last else None,
                    signoffs=seen["signoffs"] if upto == last else [])

    # --- event streams --------------------------------------------------------------------

    def event_stream(request: Request, rehearsal: Rehearsal,
                     project: Callable[[], dict[str, Any]]) -> Response:
        async def events() -> AsyncIterator[str]:
            seen = -1
            while not studio.closing and not await request.is_disconnected():
                version = rehearsal.version
                if version != seen:
                    seen = version
                    yield f"event: state\ndata: {json.dumps(project())}\n\n"
                else:
                    yield ": keep-alive\n\n"
                await rehearsal.changed(seen, KEEPALIVE_SECONDS)

        return StreamingResponse(events(), media_type="text/event-stream",
                                 headers={"x-accel-buffering": "no"})

    # --- errors ---------------------------------------------------------------------------

    def wants_json(request: Request) -> bool:
        return "text/html" not in request.headers.get("accept", "")

    async def http_error(request: Request, error: Exception) -> Response:
        assert isinstance(error, HTTPException)
        if wants_json(request):
            return JSONResponse({"error": error.detail}, error.status_code)
        return page(request, "error.html", status=error.status_code, message=error.detail)

    async def refused(request: Request, error: Exception) -> Response:
        status = 409 if isinstance(error, RefusedError) else 400
        message = text(error)
        if wants_json(request):
            return JSONResponse({"error": message}, status)
        return page(request, "error.html", status=status, message=message)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        studio.start_drivers()
        try:
            # Looked up once, before anyone waits on it (NegMAS takes a moment to import).
            await anyio.to_thread.run_sync(studio.seat_choices)
            studio.problems = studio.reopen()
            yield
        finally:
            studio.closing = True
            for rehearsal in studio.rehearsals.values():
                rehearsal.notify()  # event streams see ``closing`` and end
            await studio.stop_drivers()

    routes = [
        Route("/", index),
        Route("/setup/{key}", setup),
        Route("/rehearsals", create, methods=["POST"]),
        Route("/r/{rid}/seat/{token}", seat),
        Route("/r/{rid}/seat/{token}/state", seat_state),
        Route("/r/{rid}/seat/{token}/events", seat_events),
        Route("/r/{rid}/seat/{token}/utility", seat_utility),
        Route("/r/{rid}/seat/{token}/move", seat_move, methods=["POST"]),
        Route("/r/{rid}/seat/{token}/signoff", seat_signoff, methods=["POST"]),
        Route("/r/{rid}/observe/{token}", observe),
        Route("/r/{rid}/observe/{token}/state", observe_state),
        Route("/r/{rid}/observe/{token}/events", observe_events),
        Route("/r/{rid}/observe/{token}/charter", charter),
        Route("/transcripts", transcripts),
        Route("/transcripts/{name}", replay),
        Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
    ]
    hosts = [Middleware(TrustedHosts, hosts=studio.allowed_hosts)] \
        if studio.allowed_hosts is not None else []
    return Starlette(routes=routes, lifespan=lifespan,
                     middleware=[Middleware(SecurityHeaders), *hosts],
                     exception_handlers={HTTPException: http_error,
                                         NegotiationError: refused})
