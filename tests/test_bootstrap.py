"""The leaderboard's bootstrap: independent of the CSV's row order, equal to the one-shot
draw it replaced, and with memory bounded whatever the tournament's size."""

from __future__ import annotations

import json
import random
import tracemalloc

import numpy as np
import pytest

import negotiation.tournament as tournament
from negotiation.tournament import bootstrap_ci, leaderboard


def synthetic_rows(count: int, seed: int = 0) -> list[dict[str, str]]:
    rng = random.Random(seed)
    rows = []
    for k in range(count):
        seats = {"a": rng.choice(["boulware", "conceder"]),
                 "b": rng.choice(["boulware", "conceder", "tit_for_tat"])}
        rows.append({"job": f"job-{k:05d}", "seats": json.dumps(seats),
                     "gains": json.dumps({"a": rng.random() / 2, "b": rng.random() / 2}),
                     "status": rng.choice(["agreement", "agreement", "deadline"])})
    return rows


def one_shot(values: list[float], resamples: int = 2000, seed: int = 0) -> tuple[float, float]:
    """The bootstrap as it was: every resample drawn at once (resamples × n indices)."""
    data = np.asarray(values)
    rng = np.random.default_rng(seed)
    means = data[rng.integers(0, data.size, size=(resamples, data.size))].mean(axis=1)
    tail = (1.0 - 0.95) / 2.0
    return float(np.quantile(means, tail)), float(np.quantile(means, 1.0 - tail))


def test_intervals_do_not_depend_on_the_order_of_the_rows() -> None:
    rows = synthetic_rows(300)
    expected = leaderboard(rows)
    for seed in range(3):
        shuffled = rows[:]
        random.Random(seed).shuffle(shuffled)
        assert leaderboard(shuffled) == expected


@pytest.mark.parametrize("size", [1, 7, 333, 1000])
def test_chunked_resampling_equals_the_one_shot_draw(size: int,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    values = list(np.random.default_rng(size).normal(0.2, 0.1, size))
    assert bootstrap_ci(values) == one_shot(values)  # default chunk
    monkeypatch.setattr(tournament, "BOOTSTRAP_CHUNK", 3 * size + 1)  # many odd chunks
    assert bootstrap_ci(values) == one_shot(values)
    assert bootstrap_ci(values, seed=5) == one_shot(values, seed=5)


def test_the_bootstrap_of_a_large_tournament_stays_small_in_memory() -> None:
    # 20,000 seats (a 10,000-negotiation bilateral tournament): the one-shot draw held
    # 2000 × 20,000 indices (320 MB); chunks hold at most BOOTSTRAP_CHUNK (8 MB) at a time.
    values = list(np.random.default_rng(0).random(20_000))
    tracemalloc.start()
    try:
        bootstrap_ci(values)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 40 * 2**20
