"""The experiment spec: one YAML file naming test domains, models, metrics, samples and seeds.

Example (paths relative to the YAML file)::

    name: demo
    split: test                      # which manifest split is scored (default: test)
    test_domains:
      - {name: synthetic, manifest: ../manifest.parquet, domain: synthetic}
      - {name: simulated_cross_sensor, manifest: ../manifest.parquet, domain: simulated_cross_sensor}
    models:
      - {name: bicubic, method: bicubic}              # untrained baseline, no checkpoint
      - {name: sr3/synthetic, checkpoint: ../models/sr3_synthetic, steps: 20}  # per-model steps
      - {name: harmoniser+sr3/synthetic, checkpoint: ../models/sr3_synthetic, adapter: ../adapters/h}
      - {name: sr3/x, checkpoint: ../models/sr3_synthetic, spread_scale: ../calibration/sr3.json}
        # spread_scale: calibration rows with the spread scaled too (`mindgap spread-scale` fits it)
        # an adapter pipeline is scored only on the test domains of its adapter's input domain
        # (training.json ``source_domain``); ``test_domains: [names]`` chooses them for any model
      - {name: my-edsr, checkpoint: ../byo/edsr/model_card.yaml}  # any model with a card (models/card.py)
    metrics: [psnr, ssim, sam, ergas, cpsnr, lpips_sat]
    samples: 4                        # diffusion samples per tile (scored as their per-pixel mean)
    steps: null                       # sampler steps (null: each model's default)
    seeds: [0]
    batch_size: 12
    hist_match: none                  # none | hr | lr (recorded with every score)
    save_maps: [lpips_sat]            # metric maps saved as COGs per tile
    save_outputs: all                 # models whose SR/uncertainty/maps are saved (or a list of names)
    attribution:                      # optional, for `mindgap attribute`: split the gap by simulator effect
      reference: synthetic            # a test domain above
      target: simulated_cross_sensor  # a simulated test domain above (its simulator config is re-run)
      effects: all                    # or a list of effects that are on in the target
      shapley: all                    # models scored on every coalition of effects (Shapley values;
                                      # 2^n variants), or a list of model names; the others get the
                                      # single-effect and leave-one-out variants only

:func:`load_experiment` checks everything before any work starts and raises one clear error per
problem: unknown method, missing checkpoint, missing manifest, unknown metric, a metric that needs
HR on a domain without HR (e.g. real Sentinel-2 tiles with no PlanetScope reference).
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

from mindgap_core.errors import ConfigError, InputError
from mindgap_core.io.hashing import file_sha256

SPEC_KEYS = {"name", "split", "test_domains", "models", "metrics", "samples", "steps", "seeds",
             "batch_size", "hist_match", "save_maps", "save_outputs", "device", "attribution"}
ATTRIBUTION_KEYS = {"reference", "target", "effects", "shapley"}


@dataclass(frozen=True)
class TestDomain:
    """Which manifest rows form one test domain."""

    name: str
    manifest: Path
    domain: str


@dataclass(frozen=True)
class ModelEntry:
    """One model of the matrix: a checkpoint (a model folder or a model card), or a weight-free
    baseline by method name. A card's model has its card's name as ``method``."""

    name: str
    method: str
    regime: str
    train_domain: str
    train_blocks: int | None
    checkpoint: Path | None
    #: sampler steps of this model (None: the experiment's ``steps``, else the model's default)
    steps: int | None = None
    #: an LR -> LR adapter folder run before the SR model (the decoupled pipeline); its regime is
    #: ``"<SR regime>+<adapter label>"`` (:func:`adapter_regime`)
    adapter: Path | None = None
    #: the test domains (names) this model is scored on; None: every test domain of the experiment
    test_domains: tuple[str, ...] | None = None
    #: a post-hoc factor on the spread of the samples (fitted on a validation split by
    #: ``mindgap spread-scale``): the model's calibration scores are also stored with the samples' spread
    #: scaled, as the model :func:`recalibrated_name` (regime + :data:`RECALIBRATED_SUFFIX`)
    spread_scale: float | None = None

    def scores(self, test_domain: str) -> bool:
        """Whether this model is scored on the test domain named ``test_domain``."""
        return self.test_domains is None or test_domain in self.test_domains


@dataclass(frozen=True)
class AttributionSpec:
    """Which test domains ``mindgap attribute`` decomposes: reference -> simulated target, by effect."""

    reference: str
    target: str
    effects: tuple[str, ...] | None = None  # None: every effect that is on in the target
    shapley: tuple[str, ...] | None = None  # models with Shapley values; None: every model

    def shapley_for(self, model: str) -> bool:
        """Whether ``model`` is scored on every coalition of effects (for its Shapley values)."""
        return self.shapley is None or model in self.shapley


@dataclass(frozen=True)
class Experiment:
    """A validated experiment."""

    name: str
    source: Path
    split: str
    test_domains: tuple[TestDomain, ...]
    models: tuple[ModelEntry, ...]
    metrics: tuple[str, ...]
    samples: int = 1
    steps: int | None = None
    seeds: tuple[int, ...] = (0,)
    batch_size: int = 12
    hist_match: str = "none"
    save_maps: tuple[str, ...] = field(default_factory=tuple)
    #: models whose per-tile SR, uncertainty and maps are saved as COGs (None: all)
    save_outputs: tuple[str, ...] | None = None
    device: str | None = None
    attribution: AttributionSpec | None = None

    def saves_outputs(self, model_name: str) -> bool:
        """Whether per-tile rasters of ``model_name`` are written."""
        return self.save_outputs is None or model_name in self.save_outputs

    @property
    def spec_hash(self) -> str:
        """Hash of everything that changes results: the settings, every path relative to the YAML's
        folder (moving a checkout keeps the run id) and the content of every manifest, checkpoint and
        adapter (:func:`folder_fingerprint`: a checkpoint retrained in place is a new run)."""
        payload = asdict(self)
        payload.pop("source")
        payload.pop("attribution")  # says how `mindgap attribute` reads the results, not what is scored
        base = self.source.parent
        for entry in payload["models"]:
            if entry["test_domains"] is None:
                del entry["test_domains"]  # the default: run ids of experiments without the key stay
            if entry["spread_scale"] is None:
                del entry["spread_scale"]  # likewise
            for key in ("checkpoint", "adapter"):
                if entry[key] is not None:
                    folder = entry[key]
                    entry[key] = {"path": _relative(folder, base), "content": folder_fingerprint(folder)}
        for domain in payload["test_domains"]:
            manifest = domain["manifest"]
            domain["manifest"] = {"path": _relative(manifest, base), "content": file_sha256(manifest)}
        return hashlib.sha256(json.dumps(payload, default=str, sort_keys=True).encode()).hexdigest()

    @property
    def run_id(self) -> str:
        """Stable id: the same spec resumes the same run."""
        return f"{self.name}-{self.spec_hash[:10]}"


def _relative(path: Path, base: Path) -> str:
    """``path`` relative to ``base`` (POSIX separators), however far apart they are."""
    return Path(os.path.relpath(path, base)).as_posix()


def folder_fingerprint(folder: Path) -> str:
    """Content fingerprint of a model or adapter folder, or of a model card: every JSON/CSV/YAML file's
    bytes (configs, index, card, ``training.json`` with its finish time, loss log) and every other
    file's size (the weights; hashing gigabytes on each experiment load would be slow, and a retraining
    always rewrites training.json). A card counts with the model file it names
    (:func:`~mindgap_core.models.registry.model_files`)."""
    from mindgap_core.models.registry import model_files

    folder = Path(folder)
    base = folder if folder.is_dir() else folder.parent
    digest = hashlib.sha256()
    for path in model_files(folder):
        digest.update(Path(os.path.relpath(path, base)).as_posix().encode() + b"\0")
        if path.suffix in (".json", ".csv", ".yaml", ".yml"):
            digest.update(file_sha256(path).encode())
        else:
            digest.update(str(path.stat().st_size).encode())
    return digest.hexdigest()


def _require(raw: dict, key: str, source: Path) -> Any:
    if key not in raw:
        raise InputError(source, f"missing required key {key!r}")
    return raw[key]


def training_info(checkpoint: Path) -> dict[str, Any]:
    """method/regime/domains of a checkpoint (a model folder's model_index.json and training.json, or
    a model card)."""
    from mindgap_core.models.registry import describe_model

    info = describe_model(checkpoint)
    return {"method": info.method, "regime": info.regime, "train_domain": info.train_domain,
            "train_blocks": info.train_blocks}


def adapter_label(index: dict[str, Any]) -> str:
    """How an adapter shows in the regime column: its kind, ``_coreg`` appended when it co-registers."""
    coreg = bool(index.get("options", {}).get("coregister"))
    return {"learned": "learned_adapter"}.get(index["kind"], index["kind"]) + ("_coreg" if coreg else "")


#: joins an SR model's regime and its adapter's label in an adapter pipeline's regime
ADAPTER_JOIN = "+"


def adapter_regime(regime: str, label: str) -> str:
    """The regime of an adapter pipeline: ``"<SR regime>+<adapter label>"``."""
    return f"{regime}{ADAPTER_JOIN}{label}"


def is_adapter_regime(regime: str) -> bool:
    """Whether a result row's regime is an adapter pipeline's (see :func:`adapter_regime`)."""
    return ADAPTER_JOIN in str(regime)


def _with_adapter(entry: ModelEntry, raw: dict, base: Path, source: Path) -> ModelEntry:
    from dataclasses import replace

    from mindgap_core.adapters.registry import read_adapter_index

    if raw.get("adapter") is None:
        return entry
    folder = (base / str(raw["adapter"])).resolve()
    if not folder.exists():
        raise InputError(source, f"model {entry.name!r}: missing adapter {folder}")
    label = adapter_label(read_adapter_index(folder))
    return replace(entry, adapter=folder, regime=adapter_regime(entry.regime, label))


#: appended to the regime of a model's rows scored with a recalibrated spread (``synthetic_recalibrated``)
RECALIBRATED_SUFFIX = "_recalibrated"


def recalibrated_name(model: str) -> str:
    """The model name of a model's calibration rows with a scaled spread (``sr3/synthetic/recalibrated``)."""
    return f"{model}/recalibrated"


def read_spread_scale(value: Any, base: Path, source: Path, model: str) -> float:
    """A ``spread_scale`` entry: a positive number, or a JSON file (written by ``mindgap spread-scale``)
    whose ``scale`` is one."""
    if isinstance(value, str):
        path = (base / value).resolve()
        try:
            value = json.loads(path.read_text(encoding="utf-8"))["scale"]
        except (OSError, ValueError, KeyError, TypeError):
            raise InputError(source, f"model {model!r}: spread_scale {str(path)!r} is not a file written by "
                                     "`mindgap spread-scale` (a JSON object with a 'scale')") from None
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < float(value) < 1e3:
        raise InputError(source, f"model {model!r}: spread_scale must be a positive number or a file "
                                 f"(got {value!r})")
    return float(value)


def _model_entry(raw: Any, base: Path, source: Path, ignore_spread_scale: bool = False) -> ModelEntry:
    from dataclasses import replace

    # _plain_model_entry rejects anything but a mapping with a name, so ``raw`` is one below
    entry = _with_adapter(_plain_model_entry(raw, base, source), raw, base, source)
    if ignore_spread_scale or raw.get("spread_scale") is None:
        return entry
    return replace(entry, spread_scale=read_spread_scale(raw["spread_scale"], base, source, entry.name))


def _plain_model_entry(raw: Any, base: Path, source: Path) -> ModelEntry:
    from mindgap_core.models.registry import MODEL_REGISTRY

    if not isinstance(raw, dict) or "name" not in raw:
        raise InputError(source, f"each model needs a 'name' (got {raw!r})")
    name = str(raw["name"])
    if "checkpoint" in raw and raw["checkpoint"] is not None:
        checkpoint = (base / str(raw["checkpoint"])).resolve()
        if not checkpoint.exists():
            raise InputError(source, f"model {name!r}: missing checkpoint {checkpoint}")
        info = training_info(checkpoint)
        method = str(raw.get("method", info["method"]))
        if method != info["method"]:
            raise InputError(source, f"model {name!r}: method {method!r} but checkpoint holds "
                                     f"{info['method']!r}")
        return ModelEntry(name, method, str(raw.get("regime", info.get("regime", "unknown"))),
                          str(info.get("train_domain", "unknown")), info.get("train_blocks"), checkpoint,
                          None if raw.get("steps") is None else int(raw["steps"]))
    method = str(raw.get("method", ""))
    if method not in MODEL_REGISTRY:
        raise InputError(source, f"model {name!r}: unknown method {method!r}; known: "
                                 f"{', '.join(MODEL_REGISTRY)}")
    if method != "bicubic":
        raise InputError(source, f"model {name!r}: method {method!r} needs a trained checkpoint (missing "
                                 "'checkpoint')")
    return ModelEntry(name, method, "none", "none", None, None)


def _scored_domains(entry: ModelEntry, raw: dict, domains: list[TestDomain], source: Path) -> ModelEntry:
    """``entry`` with its test domains: ``test_domains`` of the YAML entry, else for an adapter pipeline the
    domains whose manifest domain is the adapter's input domain (its ``training.json`` ``source_domain``)."""
    from dataclasses import replace

    names = [d.name for d in domains]
    if raw.get("test_domains") is not None:
        chosen = [str(n) for n in raw["test_domains"]]
        unknown = [n for n in chosen if n not in names]
        if unknown or not chosen:
            problem = f"model {entry.name!r}: test_domains {chosen} must name test domains {names}"
            raise InputError(source, problem)
        return replace(entry, test_domains=tuple(chosen))
    if entry.adapter is None:
        return entry
    training = entry.adapter / "training.json"
    designed_for = json.loads(training.read_text()).get("source_domain") if training.is_file() else None
    chosen = [d.name for d in domains if d.domain == designed_for]
    if designed_for is None or not chosen:
        return entry  # nothing recorded: scored everywhere (the analysis still keeps it out of gap rows)
    return replace(entry, test_domains=tuple(chosen))


def _test_domain(raw: Any, base: Path, split: str, source: Path) -> tuple[TestDomain, bool]:
    """The domain and whether its rows have HR references."""
    from mindgap_core.data.manifest import read_manifest

    if not isinstance(raw, dict) or not {"name", "manifest"} <= set(raw):
        raise InputError(source, f"each test domain needs 'name' and 'manifest' (got {raw!r})")
    manifest = (base / str(raw["manifest"])).resolve()
    if not manifest.is_file():
        raise InputError(source, f"test domain {raw['name']!r}: missing manifest {manifest}")
    table = read_manifest(manifest)
    domain = str(raw.get("domain", raw["name"]))
    rows = table[(table["domain"] == domain) & (table["split"] == split)]
    if rows.empty:
        present = sorted(set(table["domain"]))
        raise InputError(manifest, f"no {split!r} rows of domain {domain!r} (domains present: {present})")
    has_hr = bool((rows["hr_path"].astype(str) != "").all())
    return TestDomain(str(raw["name"]), manifest, domain), has_hr


def _attribution(raw: Any, domains: list[TestDomain], models: tuple[ModelEntry, ...],
                 source: Path) -> AttributionSpec | None:
    if raw is None:
        return None
    if not isinstance(raw, dict) or not {"reference", "target"} <= set(raw) or set(raw) - ATTRIBUTION_KEYS:
        raise InputError(source, "attribution needs 'reference' and 'target' (optional 'effects', "
                                 f"'shapley'), got {raw!r}")
    names = [d.name for d in domains]
    for role in ("reference", "target"):
        if raw[role] not in names:
            raise InputError(source, f"attribution {role} {raw[role]!r} is not a test domain ({names})")
    effects = raw.get("effects", "all")
    if effects not in (None, "all"):
        from mindgap_core.degrade.sensor_config import check_effects

        effects = check_effects(str(e) for e in effects)
    shapley = raw.get("shapley", "all")
    if shapley != "all":
        shapley = tuple(str(m) for m in (shapley or ()))
        unknown = sorted(set(shapley) - {m.name for m in models})
        if unknown:
            raise InputError(source, f"attribution shapley names unknown models {unknown}")
    return AttributionSpec(str(raw["reference"]), str(raw["target"]),
                           None if effects in (None, "all") else tuple(effects),
                           None if shapley == "all" else shapley)


def load_experiment(path: str | Path, *, ignore_spread_scale: bool = False) -> Experiment:
    """Parse and validate an experiment YAML; every problem is one :class:`InputError`/`ConfigError`.
    ``ignore_spread_scale``: leave the models' ``spread_scale`` out (``mindgap spread-scale`` fits them,
    so their files need not exist yet)."""
    from mindgap_core.metrics.maps import MAP_KINDS
    from mindgap_core.metrics.registry import METRICS

    source = Path(path)
    if not source.is_file():
        raise InputError(source, "no such experiment file")
    try:
        raw = yaml.safe_load(source.read_text())
    except yaml.YAMLError as exc:
        raise InputError(source, f"not valid YAML ({str(exc).splitlines()[0]})") from None
    if not isinstance(raw, dict):
        raise InputError(source, "an experiment file must be a YAML mapping")
    unknown = sorted(set(raw) - SPEC_KEYS)
    if unknown:
        raise InputError(source, f"unknown keys {unknown}; known: {sorted(SPEC_KEYS)}")
    base = source.parent
    split = str(raw.get("split", "test"))
    metrics = tuple(str(m) for m in _require(raw, "metrics", source))
    bad = [m for m in metrics if m not in METRICS]
    if bad:
        raise InputError(source, f"unknown metrics {bad}; known: {', '.join(METRICS)}")
    domains = []
    for entry in _require(raw, "test_domains", source):
        domain, has_hr = _test_domain(entry, base, split, source)
        needs_hr = [m for m in metrics if METRICS[m].needs_hr]
        if not has_hr and needs_hr:
            raise InputError(source, f"metrics {needs_hr} need an HR reference, but test domain "
                                     f"{domain.name!r} has tiles without HR")
        domains.append(domain)
    models = tuple(_scored_domains(_model_entry(m, base, source, ignore_spread_scale), m, domains, source)
                   for m in _require(raw, "models", source))
    names = [m.name for m in models] + [d.name for d in domains]
    if len(set(names)) != len(names):
        raise InputError(source, "model and test-domain names must be unique")
    save_maps = tuple(str(k) for k in raw.get("save_maps", []) or [])
    if set(save_maps) - set(MAP_KINDS):
        unknown_maps = sorted(set(save_maps) - set(MAP_KINDS))
        raise InputError(source, f"unknown map kinds {unknown_maps}; known: {MAP_KINDS}")
    raw_outputs = raw.get("save_outputs", "all")
    save_outputs = None if raw_outputs in (None, "all") else tuple(str(n) for n in raw_outputs)
    unknown_models = sorted(set(save_outputs or ()) - {m.name for m in models})
    if unknown_models:
        raise InputError(source, f"save_outputs names unknown models {unknown_models}")
    try:
        experiment = Experiment(
            name=str(_require(raw, "name", source)), source=source.resolve(), split=split,
            test_domains=tuple(domains), models=models, metrics=metrics,
            samples=int(raw.get("samples", 1)),
            steps=None if raw.get("steps") is None else int(raw["steps"]),
            seeds=tuple(int(s) for s in raw.get("seeds", [0])),
            batch_size=int(raw.get("batch_size", 12)), hist_match=str(raw.get("hist_match", "none")),
            save_maps=save_maps, save_outputs=save_outputs, device=raw.get("device"),
            attribution=_attribution(raw.get("attribution"), domains, models, source),
        )
    except (TypeError, ValueError) as exc:
        raise InputError(source, f"invalid value ({exc})") from None
    if experiment.samples < 1 or experiment.batch_size < 1 or not experiment.seeds:
        raise ConfigError(f"{source}: samples and batch_size must be >= 1 and seeds non-empty")
    return experiment
