"""Training: regimes (regimes.py), in-memory tile data (data.py), the accelerate loop with EMA,
checkpoints and exact resume (trainer.py), diversity scaling (scaling.py) and the demo's plan
(recipes.py). Entry point: :func:`mindgap_core.train.trainer.train` / ``mindgap train``."""
