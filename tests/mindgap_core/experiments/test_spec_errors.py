"""Bad experiment files fail before any work starts, with one clear message each."""

import subprocess
import sys
from pathlib import Path

import pytest

from mindgap_core.errors import MindGapError
from mindgap_core.experiments.spec import load_experiment
from tests.fixtures.experiments import DEMO_MANIFEST, no_hr_manifest, write_experiment

CASES = {
    "unknown method": ({"models": [{"name": "x", "method": "esrgan"}]}, "unknown method 'esrgan'"),
    "missing checkpoint": ({"models": [{"name": "x", "checkpoint": "nowhere/model"}]}, "missing checkpoint"),
    "missing manifest": (
        {"test_domains": [{"name": "synthetic", "manifest": "missing.parquet", "domain": "synthetic"}]},
        "missing manifest",
    ),
    "unknown metric": ({"metrics": ["psnr", "fid"]}, "unknown metrics ['fid']"),
    "unknown key": ({"sample": 4}, "unknown keys ['sample']"),
    "domain absent": (
        {"test_domains": [{"name": "real", "manifest": str(DEMO_MANIFEST), "domain": "real_cross_sensor"}]},
        "no 'test' rows of domain 'real_cross_sensor'",
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_spec_raises_one_clear_error(tmp_path: Path, case: str) -> None:
    overrides, message = CASES[case]
    path = write_experiment(tmp_path, **overrides)
    with pytest.raises(MindGapError, match=message.replace("[", r"\[").replace("]", r"\]")):
        load_experiment(path)


def test_hr_metric_on_domain_without_hr_is_refused(tmp_path: Path) -> None:
    manifest = no_hr_manifest(tmp_path)
    path = write_experiment(tmp_path, test_domains=[
        {"name": "real_s2", "manifest": str(manifest), "domain": "simulated_cross_sensor"}])
    with pytest.raises(MindGapError, match=r"need an HR reference.*'real_s2'"):
        load_experiment(path)


def test_cli_fails_before_work_with_one_line(tmp_path: Path) -> None:
    path = write_experiment(tmp_path, models=[{"name": "x", "checkpoint": "nowhere/model"}])
    out = tmp_path / "results"
    proc = subprocess.run([sys.executable, "-m", "mindgap_core", "evaluate", "--experiment", str(path),
                           "--out", str(out)], capture_output=True, text=True)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    assert "missing checkpoint" in proc.stderr
    assert not out.exists()
