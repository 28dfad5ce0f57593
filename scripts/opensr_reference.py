"""Run ESA opensr-test 1.3.3 itself (the reference for MindGap's opensr-test-style scores).

opensr-test lives in its own venv (its pins differ from MindGap's), made once with:

    python3 -m venv /tmp/opensr-venv
    /tmp/opensr-venv/bin/pip install torch==2.14.1 torchvision==0.29.1   # from the local wheels
    /tmp/opensr-venv/bin/pip install opensr-test==1.3.3

and this script runs with that venv's python, from the repository root. Two commands:

    /tmp/opensr-venv/bin/python scripts/opensr_reference.py golden
        scores every triplet of tests/fixtures/opensr_triplets.py (real demo imagery, seeded SRs)
        at border 16 and 0, with float32 and with float64 inputs, and writes
        tests/data/opensr_test_golden.json (the parity test's golden values).
    /tmp/opensr-venv/bin/python scripts/opensr_reference.py score TILES.npz OUT.json [--border 16]
        scores the (N, C, H, W) ``lr``/``sr``/``hr`` arrays of TILES.npz one tile at a time with
        ``Metrics.compute`` and writes the scores and the wall time (benchmarks/metrics.py --opensr).

Config: opensr-test's defaults (the offline "Normalized Difference" setting: pcc alignment, l1
reflectance, sad spectral, l1 synthesis, nd correctness, softmin T=0.25, lambdas 0.05,
gradient_threshold "auto"), device cpu, rgb_bands [2, 1, 0] for MindGap's (blue, green, red, nir)
band order, ``border_mask`` as given. Nothing in it downloads. One thread everywhere (OpenBLAS
threads made skimage's phase correlation ~10x slower on a busy 2-core box).
"""

from __future__ import annotations

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import importlib.util  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
GOLDEN = ROOT / "tests" / "data" / "opensr_test_golden.json"
#: opensr-test's result keys -> MindGap's metric names.
KEYS = {"reflectance": "consistency_reflectance", "spectral": "consistency_spectral",
        "spatial": "consistency_spatial", "synthesis": "synthesis", "im_metric": "improvement",
        "om_metric": "omission", "ha_metric": "hallucination"}
RGB_BANDS = [2, 1, 0]


def _metrics(border: int):
    import opensr_test

    if opensr_test.__version__ != "1.3.3":
        raise SystemExit(f"opensr-test {opensr_test.__version__} found; the golden values are for 1.3.3")
    return opensr_test.Metrics(opensr_test.Config(device="cpu", rgb_bands=RGB_BANDS, border_mask=border))


def _score(metrics, lr: np.ndarray, sr: np.ndarray, hr: np.ndarray, dtype: torch.dtype) -> dict:
    t = [torch.from_numpy(np.ascontiguousarray(a)).to(dtype) for a in (lr, sr, hr)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # satalign warns when a shift exceeds its 5 px limit
        res = metrics.compute(lr=t[0], sr=t[1], hr=t[2], gradient_threshold="auto")
    return {KEYS[k]: (None if math.isnan(float(v)) else float(v)) for k, v in res.items()}


def _load_triplets():
    """tests/fixtures/opensr_triplets.py loaded by path (the tests package needs MindGap's deps)."""
    path = ROOT / "tests" / "fixtures" / "opensr_triplets.py"
    spec = importlib.util.spec_from_file_location("opensr_triplets", path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules["opensr_triplets"] = mod
    spec.loader.exec_module(mod)
    return mod


def golden(out: Path) -> None:
    import opensr_test

    fx = _load_triplets()
    triplets = fx.build_triplets()
    scores: dict[str, dict] = {}
    for border in fx.BORDERS:
        m = _metrics(border)
        for name, dtype in (("float32", torch.float32), ("float64", torch.float64)):
            key = f"border{border}_{name}"
            scores[key] = {t.case_id: _score(m, t.lr, t.sr, t.hr, dtype) for t in triplets}
            print(f"{key}: {len(triplets)} triplets scored", file=sys.stderr)
    doc = {
        "about": "Golden scores from ESA opensr-test 1.3.3 itself (scripts/opensr_reference.py golden) "
                 "on the triplets of tests/fixtures/opensr_triplets.py; keys border<B>_<input dtype>.",
        "opensr_test_version": opensr_test.__version__,
        "torch_version": torch.__version__,
        "numpy_version": np.__version__,
        "config": {"device": "cpu", "rgb_bands": RGB_BANDS, "borders": list(fx.BORDERS),
                   "other": "opensr_test.Config defaults", "gradient_threshold": "auto"},
        "inputs": {t.case_id: {"lr": fx.checksum(t.lr), "sr": fx.checksum(t.sr), "hr": fx.checksum(t.hr)}
                   for t in triplets},
        "scores": scores,
    }
    tmp = out.with_suffix(".tmp")
    tmp.write_text(json.dumps(doc, indent=1, sort_keys=True) + "\n")
    tmp.replace(out)
    print(f"wrote {out}", file=sys.stderr)


def score_npz(src: Path, out: Path, border: int) -> None:
    torch.set_num_threads(1)
    z = np.load(src)
    lr, sr, hr = z["lr"], z["sr"], z["hr"]
    m = _metrics(border)
    _score(m, lr[0], sr[0], hr[0], torch.float32)  # warm-up (first-call imports)
    rows = []
    t0 = time.perf_counter()
    c0 = time.process_time()
    for i in range(len(sr)):
        rows.append(_score(m, lr[i], sr[i], hr[i], torch.float32))
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    doc = {"tiles": len(sr), "wall_s": wall, "cpu_s": cpu, "scores": rows}
    tmp = out.with_suffix(".tmp")
    tmp.write_text(json.dumps(doc))
    tmp.replace(out)


def main() -> int:
    torch.set_num_threads(1)
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    g = sub.add_parser("golden", help="write the parity test's golden values")
    g.add_argument("--out", type=Path, default=GOLDEN)
    s = sub.add_parser("score", help="score the tiles of an .npz one by one, timed")
    s.add_argument("tiles", type=Path)
    s.add_argument("out", type=Path)
    s.add_argument("--border", type=int, default=16)
    args = ap.parse_args()
    if args.cmd == "golden":
        golden(args.out)
    else:
        score_npz(args.tiles, args.out, args.border)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
