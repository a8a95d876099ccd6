"""Ecosystem mapping and partner selection against hand computation."""

from __future__ import annotations

from pathlib import Path

import pytest

from negotiation.ecosystem import EcosystemMap
from negotiation.model import Ecosystem
from tests.test_cli import negotiate

SMALL = Ecosystem.model_validate({
    "synergy": 10, "coordination_cost": 2,
    "actors": [
        {"id": "a", "name": "A", "capabilities": ["x"], "needs": ["y"], "resources": 1,
         "values": ["open", "local"]},
        {"id": "b", "name": "B", "capabilities": ["y"], "needs": ["x"], "resources": 2,
         "values": ["open"]},
        {"id": "c", "name": "C", "capabilities": ["z"], "needs": [], "resources": 0},
    ]})


def test_pairwise_complementarity_and_alignment() -> None:
    eco = EcosystemMap(SMALL)
    a, b, c = eco.actors["a"], eco.actors["b"], eco.actors["c"]
    assert eco.complementarity(a, b) == 2 and eco.complementarity(a, c) == 0
    assert eco.alignment(a, b) == pytest.approx(0.5) and eco.alignment(a, c) == 0.0


def test_coalitions_are_ranked_by_net_surplus_with_their_shapley_split() -> None:
    eco = EcosystemMap(SMALL)
    best = eco.coalitions[0]
    # v(ab) = 1 + 2 + 10·2 = 23; surplus 23 − 3 = 20; overhead 2 per pair → net 18.
    assert best.members == ("a", "b")
    assert (best.value, best.surplus, best.overhead, best.net) == (23, 20, 2, 18)
    # φ_a = ½·v(a) + ½·(v(ab) − v(b)) = ½ + 21/2 = 11;  φ_b = ½·2 + ½·22 = 12.
    assert best.shapley == pytest.approx({"a": 11.0, "b": 12.0})
    everyone = next(r for r in eco.coalitions if r.members == ("a", "b", "c"))
    assert everyone.net == 20 - 6  # c adds nothing but coordination cost
    assert eco.coalitions[-1].net < 0


def test_a_capability_only_one_member_holds_is_flagged() -> None:
    report = EcosystemMap(SMALL).report(("a", "b"))
    assert report.dependencies == ["a: x", "b: y"]


def test_given_coalition_values_override_the_default_model() -> None:
    eco = EcosystemMap(Ecosystem.model_validate({
        **SMALL.model_dump(), "coalition_values": [{"members": ["a", "c"], "value": 100}]}))
    assert eco.coalitions[0].members == ("a", "c")


def test_mermaid_draws_who_meets_whose_needs() -> None:
    text = EcosystemMap(SMALL).mermaid()
    assert text.startswith("graph LR")
    assert 'a -- "x" --> b' in text and 'b -- "y" --> a' in text


def test_map_command_on_the_shipped_ecosystem(tmp_path: Path) -> None:
    png, mmd = tmp_path / "eco.png", tmp_path / "eco.mmd"
    done = negotiate("map", "park-redevelopment", "--png", str(png), "--mermaid", str(mmd))
    assert done.returncode == 0, done.stderr
    assert "Best coalitions by net surplus" in done.stdout
    assert "city + county + foundation" in done.stdout.replace("\n", " ") or \
        "city + foundation" in done.stdout
    assert png.read_bytes()[:4] == b"\x89PNG" and mmd.read_text().startswith("graph LR")
    missing = negotiate("map", "rd-joint-venture")
    assert missing.returncode == 2 and "no 'ecosystem:' block" in missing.stderr
