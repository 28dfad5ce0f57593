"""Shared fixtures of the dashboard AppTests: the fixture results store (built once per session by the
real evaluation, see ``tests/fixtures/results_store.py``) and, once shipped, the demo results."""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import plotly.graph_objects as go
import pytest
from streamlit.testing.v1 import AppTest

from mindgap_core.paths import DATA_ROOTS_ENV, DEMO_RESULTS
from mindgap_ui.navigation import PAGES
from tests.fixtures.attribution_store import session_attribution_store
from tests.fixtures.results_store import make_results_store

REPO = Path(__file__).resolve().parents[2]
APP = str(REPO / "app.py")


def demo_results_exist() -> bool:
    shards = DEMO_RESULTS / "shards"
    return shards.is_dir() and any(shards.glob("[!.]*.parquet"))


#: the results every page test runs on: the fixture store, and the demo results once they exist
RESULT_CASES = ["fixture"] + (["demo"] if demo_results_exist() else [])


@dataclass(frozen=True)
class ResultsCase:
    """A store to test on and the ``results`` query parameter that selects it ("" = the demo)."""

    name: str
    root: Path
    query: str


@pytest.fixture(scope="session")
def fixture_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The fixture results store (bicubic, a briefly trained and random tiny models, a scaling series).

    Built once per session in a temporary folder (about a minute on 2 CPU cores), or kept in the folder
    named by ``$MINDGAP_TEST_STORE`` (reused by later sessions: the evaluation resumes, nothing is redone).
    """
    folder = os.environ.get("MINDGAP_TEST_STORE")
    return make_results_store(Path(folder) if folder else tmp_path_factory.mktemp("dashboard_store"))


@pytest.fixture(scope="session")
def data_roots_env(fixture_store: Path):
    """``$MINDGAP_DATA_ROOTS`` naming the fixture store's folder (the dashboard refuses other paths)."""
    patch = pytest.MonkeyPatch()
    patch.setenv(DATA_ROOTS_ENV, str(fixture_store.parent))
    yield fixture_store.parent
    patch.undo()


@pytest.fixture(scope="module", params=RESULT_CASES)
def case(request: pytest.FixtureRequest, fixture_store: Path, data_roots_env: Path) -> ResultsCase:
    if request.param == "demo":
        return ResultsCase("demo", DEMO_RESULTS, "")
    return ResultsCase("fixture", fixture_store, str(fixture_store))


@pytest.fixture(scope="session")
def attribution_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A store with a normal run and a gap-attribution run (``tests/fixtures/attribution_store.py``)."""
    return session_attribution_store(tmp_path_factory)


@pytest.fixture(scope="module")
def attribution_case(attribution_store: Path) -> Iterator[ResultsCase]:
    """The attribution store as a case, its folder added to ``$MINDGAP_DATA_ROOTS`` for the module."""
    patch = pytest.MonkeyPatch()
    roots = [p for p in os.environ.get(DATA_ROOTS_ENV, "").split(os.pathsep) if p.strip()]
    patch.setenv(DATA_ROOTS_ENV, os.pathsep.join([*roots, str(attribution_store.parent)]))
    yield ResultsCase("attribution", attribution_store, str(attribution_store))
    patch.undo()


def page_file(name: str) -> str:
    """The file of page ``name`` (a key of ``mindgap_ui.navigation.PAGES``) as ``AppTest.switch_page``
    takes it: relative to ``app.py``."""
    return str(PAGES[name].path.relative_to(REPO))


def run_page(page: str, case: ResultsCase | None = None, **params: str) -> AppTest:
    """Run ``app.py`` on page ``page`` with query parameters (``results`` from ``case``)."""
    at = AppTest.from_file(APP, default_timeout=90)
    if case is not None and case.query:
        at.query_params["results"] = case.query
    for key, value in params.items():
        at.query_params[key] = value
    at.switch_page(page_file(page))
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def _decode(value):
    """plotly's typed-array JSON (``{"dtype", "bdata", "shape"}``) as numpy arrays, recursively."""
    if isinstance(value, dict):
        if "bdata" in value and "dtype" in value:
            array = np.frombuffer(base64.b64decode(value["bdata"]), dtype=np.dtype(value["dtype"]))
            shape = value.get("shape")
            if shape:
                array = array.reshape([int(n) for n in str(shape).split(",")])
            return array
        return {k: _decode(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_decode(v) for v in value]
    return value


def figures(at: AppTest) -> list[go.Figure]:
    """The plotly figures of a run (typed arrays decoded to numpy)."""
    return [go.Figure(_decode(json.loads(chart.proto.spec))) for chart in at.get("plotly_chart")]


def selected(at: AppTest, label: str):
    """The value of the selectbox/radio labelled ``label``."""
    for widget in [*at.selectbox, *at.radio]:
        if widget.label == label:
            return widget.value
    raise AssertionError(f"no widget labelled {label!r}")


def run_id(root: Path) -> str:
    """The sidebar's default run of a store: the last run id that is not a gap-attribution run."""
    from mindgap_core.attribution.names import RUN_PREFIX
    from mindgap_core.store import ResultsStore

    con = ResultsStore(root).connect()
    try:
        runs = [r[0] for r in con.execute("SELECT DISTINCT run_id FROM results ORDER BY 1").fetchall()]
    finally:
        con.close()
    return ([r for r in runs if not r.startswith(RUN_PREFIX)] or runs)[-1]
