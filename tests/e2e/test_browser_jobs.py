"""On-demand inference from real Chromium against a real server with its own jobs folder: a bicubic job
on a demo tile runs to its scores (and opens in the map explorer); two browser sessions submitting at
the same moment both get their results, one job after the other, none lost."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from mindgap_core.inference.job_runner import job_scores, spec_of
from mindgap_core.jobs import JobQueue
from tests.e2e.conftest import ARTIFACTS, REPO, streamlit_app
from tests.e2e.test_browser_maps import FRAME, page_url

pytestmark = pytest.mark.browser
DONE = re.compile(r"Job (\d+) — done — .* PSNR \d")


def _server_with_jobs(tmp_path_factory: pytest.TempPathFactory, name: str,
                      worker: str) -> Iterator[tuple[str, Path]]:
    """``streamlit run app.py`` with a fresh jobs folder and ``MINDGAP_WORKER=worker``."""
    folder = tmp_path_factory.mktemp(name)
    log_path = tmp_path_factory.mktemp(f"{name}_server") / "server.log"
    with streamlit_app(log_path, MINDGAP_JOBS_DIR=str(folder), MINDGAP_WORKER=worker) as url:
        yield url, folder


@pytest.fixture(scope="module")
def jobs_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """A server that runs jobs in its worker thread."""
    yield from _server_with_jobs(tmp_path_factory, "jobs", "thread")


def _ready(page) -> None:
    page.get_by_role("button", name="Submit job").wait_for(timeout=90000)
    page.wait_for_function("() => !document.querySelector('[data-testid=\"stStatusWidget\"]')", timeout=90000)


def _upload_and_submit(page, server: str, path: Path) -> None:
    """Open the inference page afresh, upload ``path`` and press "Submit job"."""
    page.goto(page_url(page, server, "On-demand inference"))
    _ready(page)
    page.get_by_text("Upload a GeoTIFF").click()
    page.locator('[data-testid="stFileUploaderDropzoneInput"]').set_input_files(str(path))
    page.get_by_text(path.name).first.wait_for(timeout=30000)
    page.get_by_role("button", name="Submit job").click()


def _done_text(page, timeout_ms: int = 90000) -> str:
    line = page.get_by_text(DONE).first
    line.wait_for(timeout=timeout_ms)
    return line.inner_text()


def test_bicubic_job_on_a_demo_tile_from_the_browser(page, jobs_server) -> None:
    server, folder = jobs_server
    inference = page_url(page, server, "On-demand inference")
    page.goto(inference + "?tile=r1c2")
    _ready(page)
    page.get_by_role("button", name="Submit job").click()
    queued = page.get_by_text(re.compile(r"Job \d+ queued")).first
    queued.wait_for(timeout=30000)
    job_id = int(re.search(r"Job (\d+)", queued.inner_text()).group(1))
    text = _done_text(page)  # ≤ 90 s, first job includes loading torch and the LPIPS-Sat backbone
    assert text.startswith(f"Job {job_id} — done — bicubic") and "r1c2" in text
    job = JobQueue(folder).get(job_id)
    psnr = job_scores(folder, [job_id]).set_index("metric")["value"]["psnr"]
    assert job.state == "done" and f"PSNR {psnr:.4g}" in text
    table = page.locator('[data-testid="stTable"]')
    table.wait_for(timeout=30000)
    assert "r1c2" in table.inner_text()
    # the result opens in the map explorer as the pseudo-model job:<id>
    page.get_by_text(f"Job {job_id}: open tile r1c2 in the map explorer").click()
    page.wait_for_selector("h2:has-text('Tile r1c2')", timeout=60000)
    page.wait_for_function(f"() => document.querySelectorAll('{FRAME}').length >= 2", timeout=90000)
    split = page.locator(FRAME).nth(1).element_handle(timeout=60000).content_frame()
    split.wait_for_selector(".mindgap-label", timeout=60000)
    labels = split.locator(".mindgap-label").all_inner_texts()
    assert any(f"SR job:{job_id} (bicubic" in label for label in labels)
    assert page.outside_requests == []


def test_two_sessions_submit_at_once_and_both_get_results_in_order(browser, jobs_server) -> None:
    server, folder = jobs_server
    before = {j.id for j in JobQueue(folder).jobs()}
    contexts = [browser.new_context(viewport={"width": 1400, "height": 1000}) for _ in range(2)]
    outside: list[str] = []

    def guard(route) -> None:  # as the `page` fixture: nothing may leave localhost
        if route.request.url.startswith(("http://127.0.0.1", "ws://127.0.0.1", "data:", "blob:")):
            route.continue_()
        else:
            outside.append(route.request.url)
            route.abort()

    for context in contexts:
        context.route("**/*", guard)
    try:
        pages = [c.new_page() for c in contexts]
        inference = page_url(pages[0], server, "On-demand inference")
        for pg, tile in zip(pages, ("r4c4", "r5c5"), strict=True):
            pg.goto(f"{inference}?tile={tile}")
        for pg in pages:
            _ready(pg)
        buttons = [pg.get_by_role("button", name="Submit job") for pg in pages]
        for button in buttons:  # both clicks leave before either job is queued
            button.click(no_wait_after=True)
        texts = [_done_text(pg) for pg in pages]
        ids = [int(DONE.search(t).group(1)) for t in texts]
        assert "r4c4" in texts[0] and "r5c5" in texts[1]  # each session sees its own result
        jobs = [j for j in JobQueue(folder).jobs() if j.id not in before]
        assert sorted(ids) == [j.id for j in jobs] and len(jobs) == 2  # no job lost, none duplicated
        first, second = jobs
        assert first.state == second.state == "done"
        assert first.finished <= second.started  # one at a time, in submission order
        assert outside == []
        for i, pg in enumerate(pages):
            ARTIFACTS.mkdir(exist_ok=True)
            pg.screenshot(path=str(ARTIFACTS / f"test_two_sessions_submit_at_once_session{i + 1}.png"))
    finally:
        for c in contexts:
            c.close()


def test_uploaded_geotiff_is_validated_then_run(page, jobs_server, tmp_path: Path) -> None:
    import numpy as np
    import rasterio

    server, folder = jobs_server
    before = len(JobQueue(folder).jobs())
    bad = tmp_path / "three_bands.tif"
    with rasterio.open(
        bad,
        "w",
        driver="GTiff",
        width=8,
        height=8,
        count=3,
        dtype="float32",
        crs="EPSG:32618",
        transform=rasterio.Affine(10, 0, 0, 0, -10, 0),
    ) as ds:
        ds.write(np.full((3, 8, 8), 0.1, np.float32))
    good = REPO / "data" / "demo" / "tiles" / "lr_simulated_cross_sensor" / "r2c2.tif"
    _upload_and_submit(page, server, bad)
    page.get_by_text(re.compile(r"Not queued: three_bands\.tif: has 3 band\(s\)")).wait_for(timeout=30000)
    assert len(JobQueue(folder).jobs()) == before  # nothing queued
    _upload_and_submit(page, server, good)  # from a fresh page
    deadline = time.monotonic() + 120  # the server's worker runs it (behind any earlier job)
    def upload_done() -> bool:
        jobs = JobQueue(folder).jobs()
        return len(jobs) > before and jobs[-1].state == "done"

    while time.monotonic() < deadline and not upload_done():
        time.sleep(0.5)
    line = page.get_by_text(re.compile(r"Job \d+ — done — .* r2c2\.tif: SR written \(no HR to score\)")).first
    try:
        line.wait_for(timeout=30000)  # the live panel polls once a second
    except PlaywrightTimeout:
        page.reload()  # ...a reload shows it too (the queue is durable)
        line.wait_for(timeout=60000)
    job = JobQueue(folder).jobs()[-1]
    (out,) = JobQueue(folder).outputs(job.id)
    assert job.state == "done" and spec_of(job).upload_name == "r2c2.tif" and out.kind == "sr"
    assert job_scores(folder, [job.id]).empty
    # its output is previewed and downloadable as a COG that rasterio opens
    outputs = page.locator('[data-testid="stExpander"]').filter(has_text=f"Outputs of job {job.id}")
    outputs.wait_for(timeout=30000)
    outputs.locator('[data-testid="stImage"] img').first.wait_for(timeout=30000)
    assert "SR" in outputs.inner_text()
    with page.expect_download(timeout=60000) as info:
        outputs.get_by_role("button", name="Download SR (COG)").click()
    saved = tmp_path / "downloaded_sr.tif"
    info.value.save_as(saved)
    assert saved.read_bytes() == JobQueue(folder).resolve(out.path).read_bytes()
    with rasterio.open(saved) as ds, rasterio.open(good) as lr:
        assert (ds.count, ds.height, ds.width) == (4, 2 * lr.height, 2 * lr.width) and ds.crs == lr.crs
        assert ds.tags(ns="IMAGE_STRUCTURE").get("LAYOUT") == "COG"  # GDAL says: cloud-optimised
    assert page.outside_requests == []


@pytest.fixture(scope="module")
def idle_jobs_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """A server that queues jobs but runs none (``MINDGAP_WORKER=off``): a job stays cancellable."""
    yield from _server_with_jobs(tmp_path_factory, "idle_jobs", "off")


def test_only_the_submitting_session_can_cancel_its_job(browser, idle_jobs_server) -> None:
    server, folder = idle_jobs_server
    contexts = [browser.new_context(viewport={"width": 1400, "height": 1000}) for _ in range(2)]
    try:
        owner, other = (c.new_page() for c in contexts)
        inference = page_url(owner, server, "On-demand inference")
        owner.goto(f"{inference}?tile=r2c3")
        _ready(owner)
        owner.get_by_role("button", name="Submit job").click()
        queued = owner.get_by_text(re.compile(r"Job \d+ queued")).first
        queued.wait_for(timeout=30000)
        job_id = int(re.search(r"Job (\d+)", queued.inner_text()).group(1))
        cancel = owner.get_by_role("button", name="Cancel")
        cancel.first.wait_for(timeout=30000)  # the owner sees its job's cancel button
        other.goto(inference)
        _ready(other)
        other.locator('[data-testid="stDataFrame"]').first.wait_for(timeout=60000)  # the jobs table
        assert other.get_by_role("button", name="Cancel").count() == 0  # another session does not
        cancel.first.click()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and JobQueue(folder).get(job_id).state != "cancelled":
            time.sleep(0.5)
        assert JobQueue(folder).get(job_id).state == "cancelled"
    finally:
        for c in contexts:
            c.close()
