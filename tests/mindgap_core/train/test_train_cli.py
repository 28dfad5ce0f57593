"""``mindgap train`` end to end on the tiny manifest: every method, every regime, resume, bad inputs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from mindgap_core.cli import main
from mindgap_core.models import load_model
from mindgap_core.train.trainer import TrainOptions, read_losses, train

TINY = ["--config", "tiny", "--batch-size", "2", "--lr", "1e-3"]


def _train(
    manifest: Path, out: Path, method: str, regime: str = "synthetic", steps: int = 2, *extra: str
) -> int:
    return main(["train", "--method", method, "--regime", regime, "--data", str(manifest), "--out", str(out),
                 "--steps", str(steps), *TINY, *extra])


def _info(folder: Path) -> dict:
    """The ``training.json`` a run wrote into ``folder``."""
    return json.loads((folder / "training.json").read_text())


def _weights(folder: Path) -> dict[str, torch.Tensor]:
    out = {}
    for f in sorted(folder.glob("*/diffusion_pytorch_model.safetensors")):
        out.update({f"{f.parent.name}.{k}": v for k, v in load_file(f).items()})
    return out


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("runs")


@pytest.mark.parametrize("method", ["bicubic", "regression", "sr3", "srdiff", "ldm_sr", "resshift", "sinsr"])
def test_every_method_trains_and_saves_a_loadable_model(method: str, tiny_manifest: Path, runs: Path) -> None:
    out = runs / method / "synthetic"
    assert _train(tiny_manifest, out, method, "synthetic", 0 if method == "bicubic" else 2) == 0
    info = _info(out)
    assert info["method"] == method and info["regime"] == "synthetic"
    assert info["train_domains"] == ["synthetic"]
    assert info["n_train_pairs"] == 6 and info["seed"] == 0 and len(info["manifest_sha256"]) == 64
    cmd = info["command_line"]
    assert cmd[:2] == ["mindgap", "train"] and cmd[cmd.index("--method") + 1] == method and "--data" in cmd
    stages = {"ldm_sr": ["autoencoder", "diffusion"], "sinsr": ["teacher", "distill"], "bicubic": []}
    assert [s["name"] for s in info["stages"]] == stages.get(method, ["main"])
    losses = read_losses(out / "loss.csv")
    assert [r[0] for r in losses] == list(range(1, info["steps"] + 1))
    assert (out / "loss.csv").read_text().splitlines()[0] == "step,loss,lr,wall_s"
    assert not (out / "checkpoints").exists()
    model = load_model(out)
    assert model.method == method and model.scale == 2
    lr = torch.full((1, 4, 8, 8), 0.1)
    sr = model.sample(lr, num_samples=2, steps=2, generator=torch.Generator().manual_seed(0))
    assert sr.shape == (1, 2, 4, 16, 16) and torch.isfinite(sr).all()


def test_real_mixed_and_blocks_regimes(tiny_manifest: Path, runs: Path) -> None:
    assert _train(tiny_manifest, runs / "real", "regression", "cross_sensor") == 0
    info = _info(runs / "real")
    assert info["train_domains"] == ["simulated_cross_sensor"]

    assert _train(tiny_manifest, runs / "mixed", "regression", "mixed", 2, "--mix-ratio", "0.3") == 0
    info = _info(runs / "mixed")
    assert info["train_domains"] == ["synthetic", "simulated_cross_sensor"] and info["mix_ratio"] == 0.3
    assert info["n_train_pairs_by_domain"] == {"synthetic": 6, "simulated_cross_sensor": 6}

    assert _train(tiny_manifest, runs / "blocks2", "regression", "cross_sensor", 2, "--blocks", "2") == 0
    info = _info(runs / "blocks2")
    assert info["train_blocks"] == ["b0_0", "b0_1"] and info["n_train_pairs"] == 2 and info["blocks"] == 2


def test_blocks_series(tiny_manifest: Path, runs: Path) -> None:
    out = runs / "series"
    assert _train(tiny_manifest, out, "regression", "cross_sensor", 1, "--blocks-series") == 0
    summary = json.loads((out / "scaling.json").read_text())
    assert [r["blocks"] for r in summary["runs"]] == [1, 2, 4, 6]
    for k in (1, 2, 4, 6):
        info = _info(out / f"blocks-{k:03d}")
        assert len(info["train_blocks"]) == k and info["steps"] == 1


def test_finetune_starts_from_the_synthetic_checkpoint(tiny_manifest: Path, runs: Path) -> None:
    init = runs / "ft_init"
    assert _train(tiny_manifest, init, "sr3", "synthetic") == 0
    out = runs / "ft"
    assert _train(tiny_manifest, out, "sr3", "finetune", 2, "--init", str(init)) == 0
    info = _info(out)
    assert info["init"]["path"] == str(init) and info["init"]["training"]["regime"] == "synthetic"
    assert info["train_domains"] == ["simulated_cross_sensor"]
    before, after = _weights(init), _weights(out)
    assert before.keys() == after.keys() and any(not torch.equal(before[k], after[k]) for k in before)
    assert load_model(out).band_mean == load_model(init).band_mean  # normalisation kept from the init


def test_sinsr_distils_a_given_teacher(tiny_manifest: Path, runs: Path) -> None:
    teacher = runs / "teacher"
    assert _train(tiny_manifest, teacher, "resshift", "cross_sensor") == 0
    out = runs / "sinsr_from_teacher"
    assert _train(tiny_manifest, out, "sinsr", "cross_sensor", 2, "--teacher", str(teacher)) == 0
    info = _info(out)
    assert [s["name"] for s in info["stages"]] == ["distill"] and info["teacher"] == str(teacher)


class _Interrupt(Exception):
    pass


@pytest.mark.parametrize("stop_at", [3, 5])
def test_resume_after_interruption_matches_an_uninterrupted_run(
    stop_at: int, tiny_manifest: Path, tmp_path: Path
) -> None:
    """ldm_sr, 6 steps = autoencoder 2 + diffusion 4; checkpoints every 2 steps (step 2 = stage boundary)."""
    common = dict(method="ldm_sr", regime="synthetic", manifest=tiny_manifest, steps=6, batch_size=2,
                  learning_rate=1e-3, config="tiny", checkpoint_every=2)
    ref = train(TrainOptions(out=tmp_path / "ref", **common))

    def crash(step: int) -> None:
        if step == stop_at:
            raise _Interrupt

    out = tmp_path / "cut"
    with pytest.raises(_Interrupt):
        train(TrainOptions(out=out, **common), on_step=crash)
    assert not (out / "model_index.json").exists() and (out / "checkpoints").is_dir()
    # continuing without --resume is refused; with it the run ends where the reference ended
    assert _train(tiny_manifest, out, "ldm_sr", "synthetic", 6, "--checkpoint-every", "2") == 2
    assert _train(tiny_manifest, out, "ldm_sr", "synthetic", 6, "--checkpoint-every", "2", "--resume") == 0
    info = _info(out)
    assert info["resumed_from_step"] == (stop_at // 2) * 2
    ref_w, cut_w = _weights(ref.out), _weights(out)
    assert ref_w.keys() == cut_w.keys() and all(torch.equal(ref_w[k], cut_w[k]) for k in ref_w)
    ref_losses = [r[:3] for r in read_losses(ref.out / "loss.csv")]
    assert [r[:3] for r in read_losses(out / "loss.csv")] == ref_losses
    assert load_model(out).vae.config.scaling_factor == load_model(ref.out).vae.config.scaling_factor
    # a finished run is kept: --resume again does nothing, a plain rerun is refused
    assert _train(tiny_manifest, out, "ldm_sr", "synthetic", 6, "--checkpoint-every", "2", "--resume") == 0
    assert _train(tiny_manifest, out, "ldm_sr", "synthetic", 6) == 2
    assert _train(tiny_manifest, out, "ldm_sr", "synthetic", 8, "--resume") == 2  # other settings


def _bad(capsys: pytest.CaptureFixture[str], argv: list[str], out: Path, *expected: str) -> None:
    code = main(argv)
    err = capsys.readouterr().err
    assert code == 2
    lines = [line for line in err.splitlines() if "error:" in line]
    assert len(lines) == 1 and "Traceback" not in err, err
    for text in expected:
        assert text in lines[0], lines[0]
    assert not out.exists()  # nothing written


def test_bad_inputs_exit_2_with_one_line_and_no_output(
    tiny_manifest: Path, three_band_manifest: Path, runs: Path, tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    out = tmp_path / "out"
    base = ["train", "--method", "sr3", "--data", str(tiny_manifest), "--out", str(out), "--steps", "1",
            *TINY]
    _bad(capsys, [*base[:4], str(tmp_path / "missing.parquet"), *base[5:], "--regime", "synthetic"], out,
         "missing.parquet", "no such manifest")
    _bad(capsys, [*base[:4], str(three_band_manifest), *base[5:], "--regime", "synthetic"], out,
         "r0c0.tif", "has 3 bands")
    _bad(capsys, [*base, "--regime", "finetune"], out, "--init")
    _bad(capsys, [*base, "--regime", "synthetic", "--method", "esrgan"], out, "unknown method")

    broken = tmp_path / "broken"
    broken.mkdir()
    _bad(capsys, [*base, "--regime", "finetune", "--init", str(broken)], out,
         "missing checkpoint file model_index.json")

    assert _train(tiny_manifest, tmp_path / "good", "sr3") == 0
    no_weights = tmp_path / "no_weights"
    no_weights.mkdir()
    for item in (tmp_path / "good").iterdir():
        if item.is_dir():
            (no_weights / item.name).mkdir()
            for f in item.iterdir():
                if f.name != "diffusion_pytorch_model.safetensors":
                    (no_weights / item.name / f.name).write_bytes(f.read_bytes())
        else:
            (no_weights / item.name).write_bytes(item.read_bytes())
    _bad(capsys, [*base, "--regime", "finetune", "--init", str(no_weights)], out,
         "unet", "missing checkpoint file diffusion_pytorch_model.safetensors")
    torch.save({"w": torch.zeros(2)}, no_weights / "unet" / "diffusion_pytorch_model.bin")
    _bad(capsys, [*base, "--regime", "finetune", "--init", str(no_weights)], out, "non-safetensors weights")
    _bad(capsys, [*base, "--regime", "finetune", "--init", str(runs / "nowhere")], out,
         "no such model folder")


def test_ldm_autoencoder_stage_uses_its_learning_rate_scale_and_low_posterior_variance(
    tiny_manifest: Path, tmp_path: Path
) -> None:
    config = tmp_path / "ldm.json"
    config.write_text(json.dumps({"preset": "tiny", "autoencoder_lr_scale": 5.0, "vae_logvar_init": -6.0,
                                  "autoencoder_fraction": 0.5}))
    out = tmp_path / "ldm"
    assert main(["train", "--method", "ldm_sr", "--regime", "synthetic", "--data", str(tiny_manifest),
                 "--out", str(out), "--steps", "20",
                 "--batch-size", "2", "--lr", "1e-3", "--config", str(config)]) == 0
    rows = read_losses(out / "loss.csv")
    plain = [r[2] for r in rows]
    # cosine schedule per stage; the autoencoder half runs at 5x: its first post-warm-up lr is 5e-3
    assert max(plain[:10]) == pytest.approx(5e-3) and max(plain[10:]) == pytest.approx(1e-3)
    model = load_model(out)
    assert model.autoencoder_lr_scale == 5.0 and model.stage_lr_scale("diffusion") == 1.0
    from mindgap_core.models.presets import resolve_config
    from mindgap_core.models.registry import build_model

    fresh = build_model("ldm_sr", resolve_config("ldm_sr", str(config)), scale=2)
    assert torch.all(fresh.vae.quant_conv.bias[4:] == -6.0)  # log-variance channels start low
