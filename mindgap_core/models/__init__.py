"""Super-resolution models: five diffusion methods and two baselines, all with one interface.

``load_model(path)`` reads a saved model folder; ``MODEL_REGISTRY`` maps method names to classes;
:class:`~mindgap_core.models.base.SRModel` is the interface (``sample``, ``save_pretrained``).
"""

from mindgap_core.models.base import SRModel
from mindgap_core.models.registry import (
    BASELINE_METHODS,
    DIFFUSION_METHODS,
    MODEL_REGISTRY,
    build_model,
    load_model,
    read_model_index,
)

__all__ = [
    "BASELINE_METHODS", "DIFFUSION_METHODS", "MODEL_REGISTRY", "SRModel", "build_model", "load_model",
    "read_model_index",
]
