"""LPIPS-Sat backbone: self-supervised pre-training, calibration and the checks behind them.

``encoder`` (ResNet-style encoders with timm/torchvision parameter names and LPIPS taps), ``data``
(the real S2, Landsat-8 and HR train-split imagery as reflectance), ``augment`` (views that differ
only by position, orientation and radiometry), ``simsiam`` (the SSL method), ``pretrain`` (seeded
training loop, saving), ``distortions`` (the distortion families), ``calibrate`` (2AFC fit of the
per-channel weights) and ``card`` (the metric card's computations).
"""
