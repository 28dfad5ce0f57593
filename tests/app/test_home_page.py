"""AppTest of the landing page on the embedded demo."""

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from mindgap_core.data import catalog
from mindgap_core.data.manifest import read_manifest

REPO = Path(__file__).resolve().parents[2]
MANIFEST = REPO / "data" / "demo" / "manifest.parquet"


@pytest.fixture(scope="module")
def app() -> AppTest:
    at = AppTest.from_file(str(REPO / "app.py"), default_timeout=60)
    at.run()
    return at


def test_home_renders_without_exception(app: AppTest) -> None:
    assert not app.exception, [e.value for e in app.exception]
    assert "MindGap" in app.title[0].value


def test_home_labels_simulated_data(app: AppTest) -> None:
    assert any("Simulated data" in w.value for w in app.warning)


def test_home_counts_equal_manifest(app: AppTest) -> None:
    shown = app.dataframe[0].value
    expected = catalog.domain_split_counts(read_manifest(MANIFEST))
    assert shown.equals(expected)
    assert set(shown.index) == {"synthetic", "simulated_cross_sensor"}


def test_home_shows_every_domain_of_a_tile(app: AppTest) -> None:
    captions = [img.caption for element in app.get("image") for img in element.proto.imgs]
    labels = [catalog.DOMAIN_LABELS[d] for d in ("synthetic", "simulated_cross_sensor")]
    assert sorted(captions) == sorted(["HR (reference)", *labels])
    assert all("Simulated" in c or "Synthetic" in c or "HR" in c for c in captions)


def test_tile_deep_link_selects_tile() -> None:
    at = AppTest.from_file(str(REPO / "app.py"), default_timeout=60)
    at.query_params["tile"] = "r2c3"
    at.run()
    assert not at.exception
    assert at.selectbox[0].value == "r2c3"
