"""Super-resolution models: five diffusion methods and two baselines, all with one interface, plus
models MindGap did not train, described by a model card (TorchScript, ONNX, Python entry point).

``load_model(path)`` reads a saved model folder or a model card; ``list_models(root)`` and
``describe_model(path)`` say what is there without loading it (for model pickers);
``MODEL_REGISTRY`` maps method names to classes; :class:`~mindgap_core.models.base.SRModel` is the
interface (``sample``, ``save_pretrained``).
"""

from mindgap_core.models.base import SRModel
from mindgap_core.models.registry import (
    BASELINE_METHODS,
    DIFFUSION_METHODS,
    MODEL_REGISTRY,
    ModelInfo,
    ModelListing,
    build_model,
    describe_model,
    list_models,
    load_model,
    read_model_index,
)

__all__ = [
    "BASELINE_METHODS", "DIFFUSION_METHODS", "MODEL_REGISTRY", "ModelInfo", "ModelListing", "SRModel",
    "build_model", "describe_model", "list_models", "load_model", "read_model_index",
]
