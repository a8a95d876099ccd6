"""Random scenarios for stress tests and research: valid by construction, seeded."""

from __future__ import annotations

from typing import Any

import numpy as np


def random_scenario(parties: int, issues: int, values: int, seed: int = 0) -> dict[str, Any]:
    """A scenario with ``parties`` organisations and ``issues`` discrete issues of
    ``values`` options each; weights are Dirichlet(1), scores uniform, reservation values
    uniform in [0.1, 0.4].  Deterministic for a given seed."""
    if parties < 2 or issues < 1 or values < 2:
        raise ValueError("need at least 2 parties, 1 issue and 2 values per issue")
    rng = np.random.default_rng(seed)
    options = [f"v{k}" for k in range(values)]
    issue_ids = [f"issue_{k}" for k in range(issues)]
    organizations = []
    for p in range(parties):
        raw = rng.dirichlet(np.ones(issues))
        weights = [round(float(w), 6) for w in raw]
        weights[-1] = round(1.0 - sum(weights[:-1]), 6)
        organizations.append({
            "id": f"org_{p}",
            "name": f"Organisation {p}",
            "mission": f"Generated party {p}.",
            "contribution": {"value": round(float(rng.uniform(1, 10)), 2)},
            "preferences": {
                "reservation_value": round(float(rng.uniform(0.1, 0.4)), 3),
                "weights": dict(zip(issue_ids, weights, strict=True)),
                "values": {issue: {"scores": {o: round(float(rng.random()), 3)
                                              for o in options}} for issue in issue_ids},
            },
        })
    return {
        "id": f"generated-p{parties}-i{issues}-v{values}-s{seed}",
        "title": f"Generated scenario: {parties} parties, {issues} issues × {values} values",
        "description": f"Random linear-additive scenario (seed {seed}).",
        "issues": [{"id": issue, "kind": "discrete", "name": f"Issue {k}", "options": options}
                   for k, issue in enumerate(issue_ids)],
        "organizations": organizations,
    }
