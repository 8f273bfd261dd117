"""The report of a real run that measured image quality on all 8 channels of the bundled plate,
labelled from the real CPJUMP1 plate map and compound metadata; and the page driven in headless
Chromium (hover, zoom, channel and well choosers, no request leaving the file)."""

from __future__ import annotations

import asyncio
import csv
import json
import re
import shutil

import numpy as np
import pytest

from cpfeatures.report import build_report
from cpfeatures.store import open_store, read_table

CHANNELS = ["DNA", "Mito", "AGP", "RNA", "ER", "HighZBF", "LowZBF", "Brightfield"]  # DNA first, then run order
METRICS = ["FocusScore", "PowerLogLogSlope", "PercentMaximal", "MeanIntensity"]


@pytest.fixture(scope="module")
def metadata(shared_dir):
    root = shared_dir / "data" / "cpjump1_metadata" / "metadata"
    platemap = root / "platemaps" / "2020_11_04_CPJUMP1" / "platemap" / "JUMP-Target-1_compound_platemap.txt"
    external = root / "external_metadata" / "JUMP-Target-1_compound_metadata.tsv"
    if not platemap.is_file() or not external.is_file():
        pytest.skip("no CPJUMP1 metadata")
    return platemap, external


@pytest.fixture(scope="module")
def quality_run(bundled_plate_dir, tmp_path_factory):
    """The bundled plate run with MeasureImageQuality on (intensity features only, to stay fast)."""
    from cpfeatures.run import run_plate

    root = tmp_path_factory.mktemp("quality_run")
    (root / "iq.toml").write_text('[measure]\nfamilies = ["intensity"]\nimage_families = ["imagequality"]\n')
    summary = run_plate(bundled_plate_dir, root / "iq.zarr", config=root / "iq.toml", workers=1, progress=False)
    assert summary.ok and len(summary.done) == 4
    return root / "iq.zarr", summary


@pytest.fixture(scope="module")
def quality_report(quality_run, metadata, tmp_path_factory):
    platemap, external = metadata
    out = tmp_path_factory.mktemp("quality_report") / "report.html"
    build_report(quality_run[0], out, platemap=platemap, external_metadata=external)
    return out


def _jump_labels(platemap, external) -> dict[str, str]:
    """Well -> pert_iname from the raw JUMP files (DMSO wells name no sample: their solvent)."""
    with open(external, newline="") as fh:
        names = {row["broad_sample"]: row["pert_iname"] for row in csv.DictReader(fh, delimiter="\t")}
    with open(platemap, newline="") as fh:
        return {row["well_position"]: names.get(row["broad_sample"]) or row["solvent"]
                for row in csv.DictReader(fh, delimiter="\t")}


def test_every_channel_mapped_and_labelled(quality_run, quality_report, metadata, report_reader):
    r = report_reader(quality_report)
    maps = r.maps("quality")
    assert list(maps) == [f"quality-{m}-{c}" for c in CHANNELS for m in METRICS]
    assert re.findall(r'<button type="button" data-key="(\w+)">', r.source.split('id="quality"')[1])[:8] == CHANNELS
    image = read_table(quality_run[0], "image").set_index("Metadata_Well")
    labels = _jump_labels(*metadata)
    for c in CHANNELS:
        for m in METRICS:
            for well in image.index:  # one site per well: the well median is the site's value
                _, value, tip = maps[f"quality-{m}-{c}"][well]
                assert float(value) == pytest.approx(image.at[well, f"ImageQuality_{m}_{c}"], rel=5e-3)
                assert tip.startswith(f"{well} {labels[well]} (")
    assert maps["quality-FocusScore-DNA"]["D14"][2].startswith("D14 DMSO (negative control): ")
    # the at-a-glance table lists every channel's measurements
    for c in CHANNELS:
        assert f"ImageQuality_FocusScore_{c}" in r.text("quality")


def test_run_versions_and_time_without_compilation(quality_run, quality_report, report_reader):
    store, summary = quality_run
    info = open_store(store).info
    text = report_reader(quality_report).text("summary")
    assert f"the run (recorded in the store) cpfeatures {info['cpfeatures_version']} store layout " \
           f"{info['layout_version']}" in text
    assert "this report cpfeatures" in text
    span = float(re.search(r"run time ([\d.]+) s \(store created", text).group(1))
    sites = float(re.search(r"run time without compilation ([\d.]+) s measuring 4 sites \(illumination "
                            r"written to last site written\)", text).group(1))
    setup = float(re.search(r"compilation and illumination ([\d.]+) s", text).group(1))
    # the run's own clock (RunSummary.seconds) bounds the store's stamps (whole seconds)
    assert 0 <= sites <= span + 0.05 and abs(setup + sites - span) <= 1.05 and span <= summary.seconds + 1
    # the run's own clock, recorded in the store: its sites phase is the stamps' span to whole seconds
    recorded = re.search(r"recorded by the run sites ([\d.]+) s measuring 4 sites; compiling the kernels "
                         r"([\d.]+) s; illumination functions ([\d.]+) s", text)
    assert recorded, text
    run_sites, compile_s, illum_s = map(float, recorded.groups())
    assert abs(run_sites - sites) <= 2.05 and compile_s + illum_s + run_sites <= summary.seconds + 0.1
    # the libraries under the run, as installed (importlib.metadata, not the store)
    from importlib import metadata
    for dist in ("numpy", "scikit-image", "numba", "zarr"):
        assert f"{dist} {metadata.version(dist)}" in text.split("this report")[0], dist


# -- headless Chromium ----------------------------------------------------------------------------------

def _chromium():
    return next((shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome") if shutil.which(n)),
                None)


class _Page:
    """A minimal DevTools-protocol client (aiohttp's websocket): one page, commands in sequence."""

    def __init__(self, ws, session):
        self.ws, self.session, self.events, self.next = ws, session, [], 0

    async def send(self, method, **params):
        self.next += 1
        msg = {"id": self.next, "method": method, "params": params}
        if self.session:
            msg["sessionId"] = self.session
        await self.ws.send_str(json.dumps(msg))
        while True:
            reply = json.loads((await self.ws.receive(timeout=30)).data)
            if reply.get("id") == self.next:
                assert "error" not in reply, reply
                return reply["result"]
            self.events.append(reply)

    async def js(self, expression):
        result = await self.send("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        assert "exceptionDetails" not in result, result
        return result["result"].get("value")

    async def mouse(self, kind, x, y, **extra):
        await self.send("Input.dispatchMouseEvent", type=kind, x=x, y=y, **extra)

    async def click(self, selector):
        x, y = await self.center(selector)
        for kind in ("mousePressed", "mouseReleased"):
            await self.mouse(kind, x, y, button="left", clickCount=1)

    async def center(self, selector):
        return await self.js("(()=>{const e=document.querySelector(" + json.dumps(selector) + ");"
                             "e.scrollIntoView({block:'center'});const b=e.getBoundingClientRect();"
                             "return [b.x+b.width/2,b.y+b.height/2];})()")


async def _drive(chromium, html, tmp_path):
    import aiohttp

    proc = await asyncio.create_subprocess_exec(
        chromium, "--headless", "--no-sandbox", "--disable-gpu", "--remote-debugging-port=0",
        f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1300,1000", "about:blank",
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
    try:
        url = None
        while url is None:
            line = (await asyncio.wait_for(proc.stderr.readline(), 30)).decode()
            assert line, "chromium exited before listening"
            m = re.search(r"DevTools listening on (ws://\S+)", line)
            url = m and m.group(1)
        async with aiohttp.ClientSession() as client, client.ws_connect(url, max_msg_size=0) as ws:
            browser = _Page(ws, None)
            target = (await browser.send("Target.createTarget", url="about:blank"))["targetId"]
            session = (await browser.send("Target.attachToTarget", targetId=target, flatten=True))["sessionId"]
            page = _Page(ws, session)
            for domain in ("Network", "Page", "Runtime"):
                await page.send(f"{domain}.enable")
            await page.send("Page.navigate", url=html.as_uri())
            ready = "(d=>d&&d.getAttribute('data-report-ready'))(document.documentElement)"
            for _ in range(300):  # the page's script marks the document when it has run
                if await page.js(ready) == "1":
                    break
                await asyncio.sleep(0.1)
            out = {"ready": await page.js(ready)}
            # hover a well of the cells map: the tooltip follows at once
            x, y = await page.center('svg[data-figure="cells-per-well"] rect[data-well="D08"]')
            await page.mouse("mouseMoved", x, y)
            out["tip"] = await page.js("(t=>[t.style.display, t.textContent])(document.getElementById('tip'))")
            # zoom: the + button, then the wheel over the map, then reset
            zoom = "document.querySelector('svg[data-figure=\"cells-per-well\"]').closest('.map')" \
                   ".getAttribute('data-zoom')"
            await page.click('svg[data-figure="cells-per-well"]')  # a click on the map does nothing
            await page.click('.map:has(svg[data-figure="cells-per-well"]) button[data-zoom="1.5"]')
            out["zoom_button"] = await page.js(zoom)
            x, y = await page.center('svg[data-figure="cells-per-well"] rect[data-well="D08"]')
            await page.mouse("mouseWheel", x, y, deltaX=0, deltaY=-120)
            out["zoom_wheel"] = await page.js(zoom)
            out["d08_still_under_pointer"] = await page.js(
                f"document.elementFromPoint({x},{y}).getAttribute('data-well')")
            await page.click('.map:has(svg[data-figure="cells-per-well"]) button[data-zoom="reset"]')
            out["zoom_reset"] = await page.js(zoom)
            # the channel chooser shows one channel's maps
            visible = ("[...document.querySelectorAll('.choice[data-group=\"{g}\"]')]"
                       ".filter(e=>e.offsetParent!==null).map(e=>e.getAttribute('data-key'))")
            out["channels_first"] = await page.js(visible.format(g="channel"))
            await page.click('.chooser[data-group="channel"] button[data-key="Mito"]')
            out["channels_mito"] = await page.js(visible.format(g="channel"))
            # a #well= link selects that well's card
            out["wells_first"] = await page.js(visible.format(g="well"))
            await page.js("location.hash='well=G21'")
            await asyncio.sleep(0.2)
            out["wells_g21"] = await page.js(visible.format(g="well"))
            out["select_g21"] = await page.js("document.querySelector('.chooser[data-group=\"well\"] select').value")
            out["requests"] = [e["params"]["request"]["url"] for e in page.events
                               if e.get("method") == "Network.requestWillBeSent"]
            await browser.send("Browser.close")
        return out
    finally:
        if proc.returncode is None:
            proc.kill()
        await proc.wait()


@pytest.mark.skipif(_chromium() is None, reason="no chromium on PATH")
def test_interactive_report_in_headless_chromium(quality_report, quality_run, tmp_path):
    out = asyncio.run(_drive(_chromium(), quality_report, tmp_path))
    assert out["ready"] == "1"
    cells = read_table(quality_run[0], "image").set_index("Metadata_Well").at["D08", "Count_Cells"]
    assert out["tip"] == ["block", f"D08 FK-866 (positive control): {cells:.0f} cells"]
    assert out["zoom_button"] == "1.50" and out["zoom_wheel"] == "1.88" and out["zoom_reset"] == "1.00"
    assert out["d08_still_under_pointer"] == "D08"  # the wheel zooms around the pointer
    assert out["channels_first"] == ["DNA"] and out["channels_mito"] == ["Mito"]
    assert len(out["wells_first"]) == 1 and out["wells_g21"] == ["G21"] and out["select_g21"] == "G21"
    # nothing but the file itself was requested: no network, no CDN
    assert out["requests"] and all(u.startswith(quality_report.as_uri()) or u.startswith("data:")
                                   for u in out["requests"]), out["requests"]
    assert np.all([u.split("#")[0] == quality_report.as_uri() for u in out["requests"] if u.startswith("file:")])
