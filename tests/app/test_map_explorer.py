"""AppTest of the map explorer: the scene overlay and the grid coloured by the store's values, the split
map of a tile selected by URL, job results as a pseudo-model, and a store-less view."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from mindgap_core.data.manifest import read_manifest
from mindgap_core.inference.job_runner import InferenceExecutor, InferenceSpec, job_scores, submit
from mindgap_core.jobs import JobQueue, run_worker
from mindgap_core.paths import DATA_ROOTS_ENV
from mindgap_core.store import ResultsStore
from mindgap_core.viz.overlays import value_colour
from tests.app.conftest import run_id, run_page, selected

REPO = Path(__file__).resolve().parents[2]
MANIFEST = REPO / "data" / "demo" / "manifest.parquet"


@pytest.fixture(scope="module")
def jobs_folder(tmp_path_factory: pytest.TempPathFactory):
    """An empty jobs folder for this module; the dashboard starts no worker thread in tests."""
    patch = pytest.MonkeyPatch()
    folder = tmp_path_factory.mktemp("jobs")
    patch.setenv("MINDGAP_JOBS_DIR", str(folder))
    patch.setenv("MINDGAP_WORKER", "off")
    yield folder
    patch.undo()


def _maps(at) -> list[dict]:
    """The st_folium components of a run (their arguments: script, js_links, ...)."""
    return [
        json.loads(e.proto.json_args)
        for e in at.get("component_instance")
        if "script" in json.loads(e.proto.json_args)
    ]


def _geojson(script: str) -> dict:
    decoder = json.JSONDecoder()
    start = 0
    while (start := script.find("_add({", start)) >= 0:
        obj, _ = decoder.raw_decode(script, start + len("_add("))
        if obj.get("type") == "FeatureCollection":
            return obj
        start += 1
    raise AssertionError("no GeoJSON in the map script")


def _label(script: str, text: str) -> bool:
    """Whether a map label with ``text`` is in the script (labels are JSON-encoded there)."""
    encoded = json.dumps(text).replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    return encoded in script


def _tile_means(root: Path, model: str, domain: str, metric: str = "psnr") -> dict[str, float]:
    rows = ResultsStore(root).rows(
        {
            "run_id": run_id(root),
            "model": model,
            "test_domain": domain,
            "metric": metric,
            "band": "all",
            "aggregate": "mean",
        }
    )
    return rows.groupby("tile_id")["value"].mean().to_dict()


def test_scene_map_has_the_overlay_and_the_coloured_grid(case, jobs_folder) -> None:
    at = run_page("map_explorer", case)
    (scene,) = _maps(at)  # no tile selected: only the scene map
    assert all(u.startswith("/app/static/") for u in scene["js_links"] + scene["css_links"])
    script = scene["script"]
    assert "L.imageOverlay(" in script and "data:image/webp;base64," in script
    geo = _geojson(script)
    tiles = read_manifest(MANIFEST)["tile_id"].unique()
    assert sorted(f["properties"]["id"] for f in geo["features"]) == sorted(tiles)
    model, domain = selected(at, "Model"), selected(at, "Test domain")
    expected = _tile_means(case.root, model, domain)
    assert expected, "the store has test tiles"
    low, high = min(expected.values()), max(expected.values())
    fills = {f["properties"]["id"]: f["properties"]["fill"] for f in geo["features"]}
    for tile in tiles:
        want = value_colour(expected.get(tile), low, high, "viridis")
        assert fills[tile] == want, tile
    assert "Simulated data" in at.warning[0].value


def test_gap_colouring_is_the_paired_difference(case, jobs_folder) -> None:
    at = run_page("map_explorer", case, map_colour="gap")
    assert selected(at, "Colour by") == "gap"
    model = selected(at, "Model")
    source = _tile_means(case.root, model, "synthetic")
    target = _tile_means(case.root, model, "simulated_cross_sensor")
    gaps = {t: target[t] - source[t] for t in source if t in target}  # PSNR: higher is better
    bound = max(abs(g) for g in gaps.values())
    props = {f["properties"]["id"]: f["properties"] for f in _geojson(_maps(at)[0]["script"])["features"]}
    for tile, gap in gaps.items():
        assert props[tile]["fill"] == value_colour(gap, -bound, bound, "rdbu")
        assert props[tile]["value"] == f"gap in psnr: {gap:.4g} dB"
    assert any(math.isclose(abs(g), bound) for g in gaps.values())


def test_tile_in_the_url_shows_the_split_map(case, jobs_folder) -> None:
    tile = sorted(_tile_means(case.root, "bicubic", "synthetic"))[0]
    at = run_page("map_explorer", case, tile=tile, map_left="lr|simulated_cross_sensor", map_right="hr")
    assert f"Tile {tile}" in [h.value for h in at.header]
    assert selected(at, "Selected tile") == tile
    scene, split = _maps(at)
    assert "L.control.sideBySide(" in split["script"] and split["script"].count("L.imageOverlay(") == 2
    assert "/app/static/leaflet-side-by-side/leaflet-side-by-side.js" in split["js_links"]
    assert all(u.startswith("/app/static/") for u in split["js_links"] + split["css_links"])
    assert _label(split["script"], "◀ LR: Simulated cross-sensor LR") and _label(
        split["script"], "HR (reference) ▶"
    )
    props = {f["properties"]["id"]: f["properties"] for f in _geojson(scene["script"])["features"]}
    assert props[tile]["selected"] and sum(p["selected"] for p in props.values()) == 1
    options = next(s for s in at.selectbox if s.label == "Left of the divider").options
    # every kind of raster of the tile is offered: LR per domain, HR, SR / error / LPIPS-Sat per store model
    for needle in (
        "LR: Synthetic",
        "LR: Simulated cross-sensor LR",
        "HR (reference)",
        "SR bicubic",
        "Error bicubic",
        "LPIPS-Sat map bicubic",
    ):
        assert any(o.startswith(needle) for o in options), needle
    # the small multiples: the tile's inputs and one model's rasters (compact), no all-zero uncertainty
    model = selected(at, "Rasters of")
    captions = sorted(img.caption.split(" [")[0] for element in at.get("image") for img in element.proto.imgs)
    inputs = [o for o in options if o.startswith(("LR: ", "HR "))]
    own = [o for o in options if f" {model} ← " in o]
    assert captions and set(captions) <= set(inputs + own) and set(inputs) <= set(captions)
    assert set(own) - set(captions) == {o for o in own if o.startswith("Uncertainty")}


def test_finished_job_is_a_pseudo_model(case, jobs_folder) -> None:
    queue = JobQueue(jobs_folder)
    job_id = submit(
        queue,
        InferenceSpec(
            model="bicubic",
            model_label="bicubic",
            tiles=("r3c3",),
            manifest=str(MANIFEST),
            domain="synthetic",
        ),
    )
    run_worker(queue, InferenceExecutor(device="cpu"), idle_exit_s=0)
    psnr = job_scores(jobs_folder, [job_id]).set_index("metric")["value"]["psnr"]
    at = run_page(
        "map_explorer",
        case,
        tile="r3c3",
        map_model=f"job:{job_id}",
        map_left=f"sr|job:{job_id}|synthetic",
        map_right=f"error|job:{job_id}|synthetic",
    )
    assert selected(at, "Model") == f"job:{job_id}"
    props = {f["properties"]["id"]: f["properties"] for f in _geojson(_maps(at)[0]["script"])["features"]}
    assert props["r3c3"]["value"] == f"psnr: {psnr:.4g} dB"
    split = _maps(at)[1]["script"]
    assert _label(split, f"◀ SR job:{job_id} (bicubic) ← Synthetic LR (HR degraded)")
    assert _label(split, f"Error job:{job_id} (bicubic) ← Synthetic LR (HR degraded) ▶")
    options = next(s for s in at.selectbox if s.label == "Left of the divider").options
    # the LPIPS-Sat map the job saved is offered too
    assert f"LPIPS-Sat map job:{job_id} (bicubic) ← Synthetic LR (HR degraded)" in options
    scores = at.dataframe[-1].value
    row = scores[scores["model"] == f"job:{job_id} (bicubic)"].iloc[0]
    assert row["psnr"] == pytest.approx(psnr) and row["test_domain"] == "synthetic"


def test_without_results_the_scene_and_grid_still_show(tmp_path_factory, jobs_folder) -> None:
    empty = tmp_path_factory.mktemp("no_results")
    patch = pytest.MonkeyPatch()
    patch.setenv(DATA_ROOTS_ENV, str(empty))
    try:
        at = run_page("map_explorer", None, results=str(empty), tile="r0c0")
    finally:
        patch.undo()
    scene, split = _maps(at)
    coloured = {
        f["properties"]["id"]
        for f in _geojson(scene["script"])["features"]
        if f["properties"]["fill"] != "#9e9e9e"
    }
    jobs = {o.item for o in JobQueue(jobs_folder).outputs()}  # only finished jobs can colour the grid now
    assert coloured == jobs
    if jobs:
        assert selected(at, "Model").startswith("job:")
    assert "L.control.sideBySide(" in split["script"]  # LR vs HR from the manifest alone
    assert any("No results in" in w.value for w in at.sidebar.warning)


@pytest.mark.skipif(not (REPO / "data" / "demo" / "results" / "shards").is_dir(), reason="no demo results")
def test_model_without_stored_images_says_so_and_offers_a_job(jobs_folder) -> None:
    from mindgap_core.inference.job_runner import spec_of

    at = run_page("map_explorer", None, tile="r0c2", map_model="sr3/synthetic")
    info = [i.value for i in at.info if "no stored images" in i.value]
    assert info and "sr3/synthetic" in info[0] and "r0c2" in info[0]
    caption = next(c.value for c in at.caption if c.value.startswith("No stored images for tile r0c2"))
    listed = caption.split(": ", 1)[1].rstrip(".").split(", ")
    assert "sr3/synthetic" in listed and "srdiff/synthetic" not in listed  # srdiff's are stored
    assert at.selectbox(key="map_compute_model").value == "sr3/synthetic"
    before = {j.id for j in JobQueue(jobs_folder).jobs()}
    at.button(key="map_compute").click().run()
    assert not at.exception, [e.value for e in at.exception]
    (job,) = [j for j in JobQueue(jobs_folder).jobs() if j.id not in before]
    spec = spec_of(job)
    assert spec.tiles == ("r0c2",) and spec.model_label == "sr3/synthetic"
    assert spec.model == str((REPO / "data" / "demo" / "models" / "sr3" / "synthetic").resolve())
    assert any(f"Job {job.id} queued" in s.value for s in at.success)
    JobQueue(jobs_folder).cancel(job.id)
