"""scripts/check_charter_html.sh: a full-page screenshot that never replaces the Markdown
charter's plot (runs the real script in headless Chromium)."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import anyio
from PIL import Image

from negotiation.charter import write_charter
from negotiation.engine import run_scenario
from negotiation.scenario import load_scenario

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "check_charter_html.sh"


def test_the_screenshot_shows_the_whole_page_and_leaves_the_markdown_plot_alone(
        tmp_path: Path) -> None:
    result = anyio.run(lambda: run_scenario(load_scenario("species-reintroduction"),
                                            out_dir=tmp_path))
    assert result.path is not None
    markdown = write_charter(result.path, "md")
    page = write_charter(result.path, "html")
    plot = markdown.with_suffix(".png")  # X.charter.png: the Markdown charter's plot
    before = plot.read_bytes()
    done = subprocess.run(["bash", str(SCRIPT), str(page)], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    assert plot.read_bytes() == before
    shot = page.with_name(page.name.replace(".html", ".screenshot.png"))
    assert f"screenshot: {shot}" in done.stdout
    measured = re.search(r"\((\d+)x(\d+)\)", done.stdout)
    assert measured is not None
    width, height = int(measured[1]), int(measured[2])
    with Image.open(shot) as image:
        assert image.size == (width, height)
        # Taller than the old fixed 3200 px window, which cut off the sign-off block.
        assert height > 3200
        # The bottom of the page (the sign-off and conversation sections) is drawn, not
        # cut: the last 300 rows hold text, not just the page's white background.
        bottom = image.convert("L").crop((0, height - 300, width, height))
        assert bottom.getextrema()[0] < 128
