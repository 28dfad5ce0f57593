"""LPIPS-Sat backbone and its self-supervised pre-training.

``encoder`` (ResNet-style encoders with timm/torchvision parameter names and LPIPS taps), ``data``
(the real S2 + Landsat-8 training images as reflectance), ``augment`` (satellite augmentations,
NIR band dropout), ``simsiam`` (the SSL method) and ``pretrain`` (seeded training loop, saving).
"""
