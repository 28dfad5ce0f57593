"""AppTest of the scaling & training page: curves equal ``scaling_curve``; loss curves equal the logs."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from mindgap_core.analysis.scaling import scaling_curve
from mindgap_core.analysis.training_logs import read_loss_csv
from mindgap_ui.results import model_folders
from tests.app.conftest import ResultsCase, figures, run_id, run_page


@pytest.fixture(scope="module")
def page(case):
    return run_page("scaling", case, metric="psnr")


def _titled(at, word: str):
    return [f for f in figures(at) if word in (f.layout.title.text or "")]


def test_scaling_curves_equal_core(page, case) -> None:
    expected = scaling_curve(case.root, metric="psnr",
                             filters={"run_id": run_id(case.root), "band": "all", "aggregate": "mean"})
    if expected.empty:
        assert any("No diversity-scaling series" in i.value for i in page.info)
        return
    fig = _titled(page, "Diversity scaling")[0]
    # one line per model × test domain × series (a fixed-size series' diversity arm and size control apart)
    assert len(fig.data) == expected.groupby(["method", "regime", "test_domain", "series", "fixed"],
                                             dropna=False).ngroups
    shown = np.sort(np.concatenate([np.asarray(t.y, float) for t in fig.data]))
    assert np.allclose(shown, np.sort(expected["mean"].to_numpy()))
    lows = np.sort(np.concatenate([np.asarray(t.y, float) - np.asarray(t.error_y.arrayminus, float)
                                   for t in fig.data]))
    assert np.allclose(lows, np.sort(expected["ci_low"].to_numpy()))
    assert "per doubling" in " ".join(m.value for m in page.markdown)


def test_loss_curves_equal_the_loss_logs(page, case) -> None:
    folders, _ = model_folders(case.root, run_id(case.root))  # the run's spec, or data/demo/models/
    logs = {name: read_loss_csv(folder / "loss.csv") for name, folder in folders.items()
            if (folder / "loss.csv").is_file()}
    if not logs:
        assert any("loss log" in i.value or "No trained model folders" in i.value for i in page.info)
        return
    fig = _titled(page, "Training loss")[0]
    assert sorted(t.name for t in fig.data) == sorted(logs)
    for trace in fig.data:
        assert np.allclose(np.asarray(trace.y, float), logs[trace.name]["loss"].to_numpy())
    assert fig.layout.yaxis.type == "log"
    # random-weight models have no loss log and are named as such
    assert any("Without a loss log" in c.value for c in page.caption) == (len(logs) < len(folders))


def test_linear_axis_deep_link(case) -> None:
    at = run_page("scaling", case, logy="0")
    losses = _titled(at, "Training loss")
    if losses:
        assert losses[0].layout.yaxis.type == "linear"


def test_missing_model_folders_are_explained(fixture_store, data_roots_env) -> None:
    """A copy of the store whose run record points at an experiment file that no longer exists."""
    copy = data_roots_env / "moved" / "results"  # no experiment.yaml next to it either
    if not copy.exists():
        shutil.copytree(fixture_store, copy, ignore=shutil.ignore_patterns("maps"))
        for record in (copy / "runs").glob("*.json"):
            data = json.loads(record.read_text())
            data["extra"]["spec"] = "/nonexistent/experiment.yaml"
            record.write_text(json.dumps(data))
    at = run_page("scaling", ResultsCase("moved", copy, str(copy)))
    assert any("No trained model folders found" in i.value for i in at.info)
    assert _titled(at, "Diversity scaling")  # the scaling curves need only the results
