"""The studio's safety, each attack as a test: a seat never receives another organisation's
private preferences (every HTML, JSON and event-stream response of a whole rehearsal is
searched), every seat action needs its secret token, cross-site requests are refused, text
is escaped, no parameter reaches a path, and the server binds to loopback unless told."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from negotiation.cli.serve import is_loopback
from negotiation.scenario import shipped_scenarios_dir
from tests.studio_support import (
    Person,
    Server,
    play_to_the_end,
    set_up,
    start_serve,
)
from tests.test_studio import BASE, OPENING, Open, serve, tiny_folder, wait_until

__all__ = ["serve"]  # the fixture, shared with tests/test_studio.py

#: Distinct private numbers and texts for each organisation of the marked park scenario.
MARKS: dict[str, dict[str, Any]] = {
    "city": {"reservation": 0.4129, "weights": (0.3511, 0.2489), "score": 0.6173,
             "batna": "QXCITYBATNA patch the park", "reason": "QXCITYREASON"},
    "county": {"reservation": 0.3517, "weights": (0.4013, 0.0987), "score": 0.9731,
               "batna": "QXCOUNTYBATNA build a levee", "reason": "QXCOUNTYREASON"},
    "foundation": {"reservation": 0.2983, "weights": (0.3021, 0.1979), "score": 0.9613,
                   "batna": "QXFOUNDBATNA fund a library", "reason": "QXFOUNDREASON"},
}
PARK_OPENING = {"funding_split": {"city": 30, "county": 30, "foundation": 40},
                "governance": "equal_thirds", "timeline_years": 3,
                "maintenance": "shared_public", "naming_rights": "pavilion"}


def marked_park(folder: Path) -> Path:
    """park-redevelopment, renamed, with every organisation's private numbers and texts
    replaced by values that appear nowhere else."""
    data = yaml.safe_load((shipped_scenarios_dir() / "park-redevelopment.yaml").read_text())
    data["id"] = "park-marked"
    for org in data["organizations"]:
        marks, preferences = MARKS[org["id"]], org["preferences"]
        preferences["reservation_value"] = marks["reservation"]
        preferences["batna"] = marks["batna"]
        preferences["weights"]["funding_split"], preferences["weights"]["governance"] = \
            marks["weights"]
        scores = preferences["values"]["governance"]["scores"]
        scores[max(scores, key=scores.get)] = marks["score"]
        for n, line in enumerate(preferences["red_lines"]):
            line["reason"] = f"{marks['reason']}{n}"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "park-marked.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    return folder


def secrets_of(org: str) -> list[str]:
    marks = MARKS[org]
    return [str(marks["reservation"]), *map(str, marks["weights"]), str(marks["score"]),
            marks["batna"], marks["reason"]]


class Stream(threading.Thread):
    """Reads a seat's event stream until the rehearsal is ratified (or a deadline)."""

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self.url, self.text = url, ""

    def run(self) -> None:
        deadline = time.monotonic() + 90
        with httpx.stream("GET", self.url + "/events", timeout=30) as reply:
            for chunk in reply.iter_text():
                self.text += chunk
                if '"ratified": true' in chunk or time.monotonic() > deadline:
                    return


def test_no_response_a_seat_receives_holds_another_organisations_private_preferences(
        tmp_path: Path) -> None:
    server = Server(tmp_path / "transcripts",
                    extra=["--scenarios", str(marked_park(tmp_path / "s"))]).start()
    try:
        with httpx.Client(timeout=10) as client:
            links = set_up(client, server.base, "park-marked",
                           {"city": "human", "county": "human", "foundation": "conceder"},
                           rounds=12)
            streams = {party: Stream(url) for party, url in links.seats.items()}
            for stream in streams.values():
                stream.start()
            people = {"city": Person(client, links.seats["city"], server.base,
                                     opening=PARK_OPENING).open(),
                      "county": Person(client, links.seats["county"], server.base).open()}
            for person in people.values():  # the live utility of drafts, as the page asks
                for terms in (PARK_OPENING, {**PARK_OPENING, "governance": "city_majority"}):
                    person.seen.append(client.get(person.url + "/utility", params={
                        "terms": json.dumps(terms)}).text)
            play_to_the_end(list(people.values()))
            for person in people.values():
                assert person.sign("approve", "agreed").status_code == 200
                person.state()
            for stream in streams.values():
                stream.join(30)
    finally:
        server.stop()
    for party, person in people.items():
        received = "\n".join([*person.seen, streams[party].text])
        assert '"outcome": {"status": "agreement"' in received  # a whole rehearsal was seen
        assert '"ratified": true' in streams[party].text
        for secret in secrets_of(party):
            assert secret in received, f"{party}'s own brief is shown to it: {secret}"
        for other in MARKS.keys() - {party}:
            for secret in secrets_of(other):
                assert secret not in received, f"{party}'s seat received {other}'s {secret}"


def test_every_seat_action_needs_that_seats_secret_token(tmp_path: Path, serve: Open) -> None:
    client = serve(tiny_folder(tmp_path / "s"))
    links = set_up(client, BASE, "tiny", {"a": "human", "b": "human"})
    other = set_up(client, BASE, "tiny", {"a": "human", "b": "human"})
    alpha = Person(client, links.seats["a"], BASE).open()
    seat_base, token = links.seats["a"].rsplit("/", 1)
    assert len(token) >= 43  # token_urlsafe(32): 256 bits
    observer_token = links.observer.rsplit("/", 1)[1]
    wrong = [seat_base + "/" + "A" * 43, seat_base + "/" + token[:-1] + "B",
             seat_base + "/" + observer_token,  # the observer's link is no seat
             other.seats["a"].replace(other.rehearsal, links.rehearsal)]
    for url in wrong:
        for suffix in ("", "/state", "/events", "/utility?terms=%7B%7D"):
            assert client.get(url + suffix).status_code == 404, url + suffix
        reply = client.post(url + "/move", json={"kind": "accept", "rationale": "x",
                                                 "csrf": alpha.csrf},
                            headers={"origin": BASE})
        assert reply.status_code == 404
    assert client.get(links.observer.rsplit("/", 1)[0] + "/" + token + "/state"
                      ).status_code == 404  # a seat's token is no observer link
    assert alpha.state()["history"] == []


def test_cross_site_requests_are_refused(tmp_path: Path, serve: Open) -> None:
    client = serve(tiny_folder(tmp_path / "s"))
    links = set_up(client, BASE, "tiny", {"a": "human", "b": "human"})
    alpha = Person(client, links.seats["a"], BASE).open()
    beta = Person(client, links.seats["b"], BASE).open()
    wait_until(lambda: alpha.state()["your_turn"])
    move = {"kind": "propose", "terms": OPENING, "rationale": "forged"}
    url = links.seats["a"] + "/move"
    attempts = [
        ({**move, "csrf": alpha.csrf}, {"origin": "http://evil.example"}),
        ({**move, "csrf": alpha.csrf}, {"sec-fetch-site": "cross-site"}),
        ({**move, "csrf": alpha.csrf}, {"sec-fetch-site": "same-site"}),
        (move, {"origin": BASE}),  # no token
        ({**move, "csrf": beta.csrf}, {"origin": BASE}),  # another seat's token
    ]
    for body, headers in attempts:
        assert client.post(url, json=body, headers=headers).status_code == 403, headers
    # A form post (what a cross-site page can send without asking) is not accepted.
    form = client.post(url, data={"kind": "accept", "rationale": "x", "csrf": alpha.csrf},
                       headers={"origin": BASE})
    assert form.status_code == 415
    page = client.get("/setup/tiny").text
    assert 'name="csrf"' in page
    for headers in ({"origin": "http://evil.example"}, {"sec-fetch-site": "cross-site"}):
        reply = client.post("/rehearsals", data={"scenario": "tiny", "seat-a": "human",
                                                  "seat-b": "human"}, headers=headers)
        assert reply.status_code == 403
    assert client.post("/rehearsals", data={"scenario": "tiny", "seat-a": "human",
                                            "seat-b": "human", "csrf": "0" * 64},
                       headers={"origin": BASE}).status_code == 403
    assert alpha.state()["history"] == []
    assert alpha.move({**move, "rationale": "genuine"}).status_code == 200


HOSTILE = "<script>alert('owned')</script>"


def test_hostile_names_and_rationales_are_escaped_everywhere(tmp_path: Path,
                                                             serve: Open) -> None:
    client = serve(tiny_folder(tmp_path / "s", a=HOSTILE, b='Beta" onmouseover="x'))
    links = set_up(client, BASE, "tiny", {"a": "human", "b": "human"})
    alpha = Person(client, links.seats["a"], BASE).open()
    beta = Person(client, links.seats["b"], BASE).open()
    wait_until(lambda: alpha.state()["your_turn"])
    rationale = "<img src=x onerror=alert(1)> \x1b[2J</em>"
    assert alpha.move({"kind": "propose", "terms": OPENING, "rationale": rationale}
                      ).status_code == 200
    wait_until(lambda: bool(beta.state()["history"]))
    pages = [client.get("/").text, client.get("/setup/tiny").text,
             client.get(links.seats["a"]).text, client.get(links.seats["b"]).text,
             client.get(links.observer).text,
             client.get(f"/transcripts/{links.rehearsal}").text]
    for page in pages:
        assert "<script>alert" not in page and "<img src=x" not in page
        assert 'onmouseover="x' not in page
    assert "&lt;script&gt;alert(&#39;owned&#39;)&lt;/script&gt;" in pages[3]  # shown as text
    assert "&lt;img src=x onerror=alert(1)&gt;" in pages[5]
    state = client.get(links.observer + "/state")
    assert state.headers["content-type"] == "application/json"
    assert state.headers["x-content-type-options"] == "nosniff"
    assert "\x1b" not in state.text and "\\u001b" not in state.text  # controls stripped
    policy = client.get(links.seats["a"]).headers["content-security-policy"]
    assert "script-src 'self'" in policy and "unsafe-inline" not in policy
    assert "frame-ancestors 'none'" in policy


@pytest.mark.parametrize("path", [
    # (A bare "/.." is resolved by the client before it is sent; these reach the server.)
    "/setup/..%2F..%2Fetc%2Fpasswd", "/setup/%2Fetc%2Fpasswd", "/setup/%2E%2E",
    "/transcripts/..%2F..%2Fetc%2Fpasswd", "/transcripts/%2E%2E%2Fstudio",
    "/transcripts/%2Fetc%2Fpasswd", "/r/..%2F..%2Fetc/seat/" + "A" * 43,
    "/r/%2E%2E/observe/" + "A" * 43 + "/state",
    "/static/..%2F..%2F..%2Fpyproject.toml", "/static/%2E%2E/app.py",
    "/static/%2E%2E%2Fapp.py",
])
def test_no_parameter_reaches_a_path(tmp_path: Path, serve: Open, path: str) -> None:
    client = serve(tiny_folder(tmp_path / "s"))
    reply = client.get(path)
    assert reply.status_code == 404
    assert "root:" not in reply.text and "[project]" not in reply.text
    assert "import" not in reply.text


def test_it_binds_to_loopback_by_default_and_warns_for_any_wider_address(
        tmp_path: Path) -> None:
    assert is_loopback("127.0.0.1") and is_loopback("localhost") and is_loopback("::1")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.168.1.10")
    default = Server(tmp_path / "a").start()
    try:
        assert httpx.get(default.base + "/").status_code == 200
    finally:
        default.stop()
    said = default.said()
    assert "http://127.0.0.1:" in said and "warning" not in said
    wide, output, announced = start_serve("--host", "0.0.0.0", "--port", "0",
                                          "--transcripts", str(tmp_path / "b"))
    try:
        assert httpx.get(f"http://127.0.0.1:{announced.group(1)}/").status_code in (200, 403)
    finally:
        wide.terminate()
        wide.wait(30)
    errors = output.text()
    assert "warning: listening on 0.0.0.0" in errors and "HTTPS" in errors
