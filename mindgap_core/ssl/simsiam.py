"""SimSiam (Chen & He, CVPR 2021): self-supervised learning without negatives or momentum encoder.

Two augmented views go through the same encoder + projector; a predictor maps one view's projection
onto the other's, with a stop-gradient on the target; the loss is the symmetric negative cosine
similarity. Chosen because it trains stably at small batch sizes on a CPU. Dimensions are scaled down
from the paper (projection 512, predictor bottleneck 128) to fit a ~1 M-parameter encoder.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from mindgap_core.ssl.encoder import ResNetEncoder


class SimSiam(nn.Module):
    """Encoder + 3-layer projector (BN on the output) + 2-layer bottleneck predictor."""

    def __init__(self, encoder: ResNetEncoder, proj_dim: int = 512, pred_dim: int = 128) -> None:
        super().__init__()
        self.encoder = encoder
        c = encoder.out_channels
        self.projector = nn.Sequential(
            nn.Linear(c, proj_dim, bias=False), nn.BatchNorm1d(proj_dim), nn.ReLU(inplace=True),
            nn.Linear(proj_dim, proj_dim, bias=False), nn.BatchNorm1d(proj_dim), nn.ReLU(inplace=True),
            nn.Linear(proj_dim, proj_dim, bias=False), nn.BatchNorm1d(proj_dim, affine=False),
        )
        self.predictor = nn.Sequential(
            nn.Linear(proj_dim, pred_dim, bias=False), nn.BatchNorm1d(pred_dim), nn.ReLU(inplace=True),
            nn.Linear(pred_dim, proj_dim),
        )

    def forward(self, x1: torch.Tensor, x2: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(loss, z1) for two views; loss = -(cos(p1, sg z2) + cos(p2, sg z1)) / 2."""
        z = self.projector(self.encoder(torch.cat([x1, x2], dim=0)))
        p = self.predictor(z)
        z1, z2 = z.chunk(2)
        p1, p2 = p.chunk(2)
        loss = -(F.cosine_similarity(p1, z2.detach(), dim=-1).mean()
                 + F.cosine_similarity(p2, z1.detach(), dim=-1).mean()) / 2
        return loss, z1.detach()


def collapse_std(z: torch.Tensor) -> float:
    """Mean per-dimension std of L2-normalised outputs; ~1/sqrt(d) when healthy, 0 when collapsed."""
    return float(F.normalize(z, dim=1).std(dim=0).mean())
