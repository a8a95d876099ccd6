"""Plots a reviewer sees: offers in utility space and each party's utility by round, from
``negotiate report --plot`` and inside the charter."""

from __future__ import annotations

import base64
import io
import re
from pathlib import Path

import anyio
import pytest
from PIL import Image
from typer.testing import CliRunner

from negotiation.charter import render_html, write_charter
from negotiation.cli import app
from negotiation.engine import run_scenario
from negotiation.scenario import load_scenario

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
#: Figure sizes at 110 dpi: the utility-over-time plot has one panel per party, three to a
#: row; the offer plot of 3+ parties one row per proposer and one column per pair.
OVER_TIME_SIZE = {2: (1144, 528), 3: (1716, 528)}
TRACE_SIZE = {2: (572, 528), 3: (1540, 1408)}


def finished_run(folder: Path, name: str) -> Path:
    result = anyio.run(lambda: run_scenario(load_scenario(name), out_dir=folder))
    assert result.path is not None and result.agreement is not None
    return result.path


def image_size(data: bytes) -> tuple[int, int]:
    assert data.startswith(PNG_MAGIC)
    with Image.open(io.BytesIO(data)) as image:
        image.verify()
    with Image.open(io.BytesIO(data)) as image:
        return image.size


@pytest.mark.parametrize(("name", "parties"), [("platform-app-vendor", 2),
                                               ("species-reintroduction", 3)])
def test_report_plot_draws_offers_and_utility_over_time(tmp_path: Path, name: str,
                                                        parties: int) -> None:
    run = finished_run(tmp_path, name)
    target = tmp_path / "offers.png"
    result = CliRunner().invoke(app, ["report", str(run), "--plot", str(target)])
    assert result.exit_code == 0, result.output
    over_time = tmp_path / "offers.over-time.png"
    output = "".join(result.output.split())  # long paths wrap in the console
    assert f"Plot:{target}" in output and f"Plot:{over_time}" in output
    assert image_size(target.read_bytes()) == TRACE_SIZE[parties]
    assert image_size(over_time.read_bytes()) == OVER_TIME_SIZE[parties]


def test_the_html_charter_embeds_both_plots(tmp_path: Path) -> None:
    page = render_html(finished_run(tmp_path, "species-reintroduction"))
    images = re.findall(r'<img src="data:image/png;base64,([A-Za-z0-9+/=]+)" alt="([^"]+)"',
                        page)
    assert [alt for _, alt in images] == ["Offers and agreement in utility space",
                                          "Each party's utility of each offer by round"]
    sizes = [image_size(base64.b64decode(data)) for data, _ in images]
    assert sizes == [TRACE_SIZE[3], OVER_TIME_SIZE[3]]


def test_the_markdown_charter_writes_and_links_both_plots(tmp_path: Path) -> None:
    charter = write_charter(finished_run(tmp_path, "platform-app-vendor"), "md")
    trace = charter.with_suffix(".png")
    over_time = charter.with_name(charter.name.replace(".md", ".over-time.png"))
    assert image_size(trace.read_bytes()) == TRACE_SIZE[2]
    assert image_size(over_time.read_bytes()) == OVER_TIME_SIZE[2]
    text = charter.read_text()
    assert f"]({trace.name})" in text and f"]({over_time.name})" in text
