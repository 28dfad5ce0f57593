"""Every bad input gives one clear InputError/ConfigError before any work, and nothing is written."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from mindgap_core.errors import ConfigError, InputError
from mindgap_core.inference import run_inference
from tests.mindgap_core.inference.toys import ConvUpModel, smooth_scene, write_scene

pytestmark = pytest.mark.filterwarnings("ignore::rasterio.errors.NotGeoreferencedWarning")


@pytest.fixture
def scene(tmp_path: Path) -> Path:
    return write_scene(tmp_path / "lr.tif", smooth_scene(40, 40))


def _files(folder: Path) -> set[str]:
    return {p.name for p in folder.iterdir()}


def test_wrong_band_count_names_the_file(tmp_path: Path) -> None:
    src = write_scene(tmp_path / "rgb.tif", smooth_scene(40, 40)[:3], band_names=("blue", "green", "red"))
    with pytest.raises(InputError, match=r"rgb\.tif: has 3 band\(s\); model 'toy-conv' expects 4"):
        run_inference(ConvUpModel(), src, tmp_path / "sr.tif")
    assert _files(tmp_path) == {"rgb.tif"}


def test_missing_band_name_names_the_file(tmp_path: Path) -> None:
    names = ("blue", "green", "red", "swir16")
    src = write_scene(tmp_path / "swir.tif", smooth_scene(40, 40), band_names=names)
    with pytest.raises(InputError, match=r"swir\.tif: .*missing \['nir'\]"):
        run_inference(ConvUpModel(), src, tmp_path / "sr.tif")
    with pytest.raises(ConfigError, match="3 band names"):
        run_inference(ConvUpModel(), src, tmp_path / "sr.tif", band_names=["blue", "green", "red"])
    assert _files(tmp_path) == {"swir.tif"}


@pytest.mark.parametrize(
    ("tile", "overlap", "message"),
    [(16, 8, "larger than twice the overlap"), (8, 12, "larger than twice the overlap"), (0, 0, "at least 1"),
     (32, -1, "overlap must be >= 0")],
)  # fmt: skip
def test_bad_tile_and_overlap(scene: Path, tmp_path: Path, tile: int, overlap: int, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        run_inference(ConvUpModel(), scene, tmp_path / "sr.tif", tile=tile, overlap=overlap)
    assert not (tmp_path / "sr.tif").exists()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"num_samples": 0}, "num_samples"), ({"batch_size": 0}, "batch_size"), ({"steps": 0}, "steps")],
)
def test_bad_counts(scene: Path, tmp_path: Path, kwargs: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        run_inference(ConvUpModel(), scene, tmp_path / "sr.tif", **kwargs)


def test_crs_less_input_needs_allow_no_crs(tmp_path: Path) -> None:
    src = write_scene(tmp_path / "patch.tif", smooth_scene(40, 40), crs=None)
    with pytest.raises(InputError, match=r"patch\.tif: has no coordinate reference system.*allow-no-crs"):
        run_inference(ConvUpModel(), src, tmp_path / "sr.tif")
    assert _files(tmp_path) == {"patch.tif"}


def test_unreadable_and_missing_input(tmp_path: Path) -> None:
    junk = tmp_path / "junk.tif"
    junk.write_text("not a raster")
    with pytest.raises(InputError, match=r"junk\.tif: not a readable raster"):
        run_inference(ConvUpModel(), junk, tmp_path / "sr.tif")
    with pytest.raises(InputError, match=r"nope\.tif: file not found"):
        run_inference(ConvUpModel(), tmp_path / "nope.tif", tmp_path / "sr.tif")
    with pytest.raises(InputError, match="is a folder"):
        run_inference(ConvUpModel(), tmp_path, tmp_path / "sr.tif")
    assert _files(tmp_path) == {"junk.tif"}


def test_truncated_input(scene: Path, tmp_path: Path) -> None:
    data = scene.read_bytes()
    cut = tmp_path / "cut.tif"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(InputError, match=r"cut\.tif: "):
        run_inference(ConvUpModel(), cut, tmp_path / "sr.tif")
    assert not (tmp_path / "sr.tif").exists()


def test_unwritable_output(scene: Path, tmp_path: Path) -> None:
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    with pytest.raises(InputError, match="cannot write here"):
        run_inference(ConvUpModel(), scene, blocker / "sr.tif")
    with pytest.raises(ConfigError, match="is the input file"):
        run_inference(ConvUpModel(), scene, scene)
    with pytest.raises(ConfigError, match="same as the output"):
        run_inference(ConvUpModel(), scene, tmp_path / "sr.tif", uncertainty_path=tmp_path / "sr.tif")


def test_dn_input_needs_a_scale_and_reflectance_is_checked(tmp_path: Path) -> None:
    dn = write_scene(tmp_path / "dn.tif", (smooth_scene(40, 40) * 10000).astype(np.uint16))
    with pytest.raises(InputError, match=r"dn\.tif: holds digital numbers \(uint16.*--dn-scale"):
        run_inference(ConvUpModel(), dn, tmp_path / "sr.tif")
    float_dn = write_scene(tmp_path / "float_dn.tif", smooth_scene(40, 40) * 10000)
    with pytest.raises(InputError, match=r"float_dn\.tif: .*digital numbers"):
        run_inference(ConvUpModel(), float_dn, tmp_path / "sr.tif")
    with pytest.raises(ConfigError, match="dn_scale"):
        run_inference(ConvUpModel(), dn, tmp_path / "sr.tif", dn_scale=0.0)
    assert _files(tmp_path) == {"dn.tif", "float_dn.tif"}


class _FailsOnThirdCall(ConvUpModel):
    def __init__(self, exc: BaseException) -> None:
        super().__init__()
        self.exc = exc

    def sample(self, lr, num_samples=1, steps=None, generator=None):
        if len(self.calls) == 2:
            raise self.exc
        return super().sample(lr, num_samples, steps, generator)


@pytest.mark.parametrize("exc", [RuntimeError("CUDA out of memory"), KeyboardInterrupt()])
def test_failure_midway_leaves_nothing_and_keeps_the_old_output(
    scene: Path, tmp_path: Path, exc: BaseException
) -> None:
    old = tmp_path / "sr.tif"
    old.write_bytes(b"previous result")
    with pytest.raises(type(exc)):
        run_inference(
            _FailsOnThirdCall(exc), scene, old,
            tile=16, overlap=4, batch_size=1, uncertainty_path=tmp_path / "u.tif",
        )  # fmt: skip
    assert old.read_bytes() == b"previous result"
    assert _files(tmp_path) == {"lr.tif", "sr.tif"}  # no uncertainty, no temp files or folders
