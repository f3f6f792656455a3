"""report.html opened in a real browser (Debian's headless chromium): every image loads, the page
logs no console error, a screenshot is taken; and the check itself fails on a broken image.

Without ``chromium`` on PATH the tests skip, except under ``CI=true`` (.ci/run installs it)."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from matplotlib.image import imread

from gpuproc.report.html import write_report

BENCH = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_figures.py"
#: injected first in <head>: records console errors and failed loads, then the state of every image
PROBE = """<script>window.__errors=[];const __err=console.error;console.error=(...a)=>{window.__errors.push(a.join(' '));
__err(...a)};window.addEventListener('error',e=>window.__errors.push(String(e.message||(e.target&&e.target.alt)||e)),
true);window.addEventListener('load',()=>{const im=[...document.images];const p=document.createElement('pre');
p.id='gpuproc-probe';p.textContent=JSON.stringify({n:im.length,broken:im.filter(i=>!(i.complete&&i.naturalWidth>0))
.map(i=>i.alt),errors:window.__errors});document.body.appendChild(p)});</script>"""


def _chromium() -> str:
    path = shutil.which("chromium")
    if path is None:
        message = "no chromium on PATH (apt-get install chromium; .ci/run installs it)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message)
    return path


def _stores():
    spec = importlib.util.spec_from_file_location("bench_figures", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def reports(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("browser")
    bench = _stores()
    return {"waxs": write_report(bench.waxs_store(tmp / "w.zarr", shape=(6, 8)), tmp / "waxs"),
            "pl": write_report(bench.pl_store(tmp / "p.zarr", n=30), tmp / "pl")}


def _open(chromium: str, page: Path, screenshot: Path | None = None) -> dict:
    """Load ``page`` (with the probe) in headless chromium; the probe's findings."""
    probed = page.with_name(page.stem + "_probed.html")
    probed.write_text(page.read_text(encoding="utf-8").replace("<head>", "<head>" + PROBE, 1), encoding="utf-8")
    args = [chromium, "--headless=new", "--no-sandbox", "--disable-gpu", "--virtual-time-budget=10000",
            "--window-size=1200,2400"]
    url = probed.resolve().as_uri()
    dom = subprocess.run(args + ["--dump-dom", url], capture_output=True, text=True, timeout=120)
    found = re.search(r'<pre id="gpuproc-probe">([^<]*)</pre>', dom.stdout)
    assert found, f"page did not finish loading: {dom.stderr[-2000:]}"
    if screenshot is not None:
        subprocess.run(args + [f"--screenshot={screenshot}", url], capture_output=True, timeout=120, check=True)
    return json.loads(found.group(1).replace("&quot;", '"'))


@pytest.mark.parametrize("pipeline", ["waxs", "pl"])
def test_report_loads_in_chromium(reports, pipeline, tmp_path):
    chromium = _chromium()
    page = reports[pipeline]
    shot = tmp_path / f"{pipeline}.png"
    probe = _open(chromium, page, screenshot=shot)
    assert probe["n"] == page.read_text(encoding="utf-8").count("<img ") > 3
    assert probe["broken"] == [] and probe["errors"] == []
    image = imread(shot)
    assert image.shape[0] >= 2000 and np.std(image[..., :3]) > 0.05  # the page was drawn, not blank


def test_a_broken_image_and_a_console_error_are_found(reports, tmp_path):
    chromium = _chromium()
    page = tmp_path / "broken.html"
    text = reports["pl"].read_text(encoding="utf-8")
    page.write_text(text.replace("base64,iVBOR", "base64,AAAAA", 1), encoding="utf-8")  # corrupt the first PNG
    probe = _open(chromium, page)
    assert probe["broken"] == [re.search(r'alt="([^"]+)"', text).group(1)]
    page.write_text(text.replace("</body>", "<script>console.error('gpuproc test')</script></body>"), encoding="utf-8")
    probe = _open(chromium, page)
    assert probe["broken"] == [] and probe["errors"] == ["gpuproc test"]
