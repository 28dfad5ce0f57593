"""LR -> LR domain adapters (classical harmoniser, learned CNN) and the "adapter + SR model" pipeline."""
