"""Pair losses for metric learning on must-link / cannot-link answer pairs."""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["ContrastiveLoss"]


class ContrastiveLoss(nn.Module):
    """Contrastive loss on the cosine distance of two embeddings (Hadsell et al., 2006).

    Must-links are pulled together (loss ``d**2``) and cannot-links pushed apart until they are
    at least ``margin`` away (loss ``relu(margin - d)**2``), with ``d = 1 - cos(a, b)``. This is
    sentence-transformers' ``ContrastiveLoss`` (cosine distance, halved, averaged); with
    ``online=True`` it is its ``OnlineContrastiveLoss``, which keeps only the hard pairs of the
    batch: must-links further apart than the closest cannot-link, and cannot-links closer than
    the furthest must-link.

    Pairs, not triplets or in-batch negatives (MultipleNegativesRankingLoss), because the
    grading signal is pairwise and has real negatives: two answers about the same thing that
    an instructor moved apart, which is exactly what random in-batch negatives miss.

    Parameters
    ----------
    margin : float
        Cosine distance beyond which a cannot-link costs nothing. 0.5 is
        sentence-transformers' default.
    online : bool
        Keep only the hard pairs of each batch (falls back to all pairs when the batch has
        only one kind, where "hard" is undefined).

    Inputs
    ------
    a, b : Tensor of shape (batch, dim)
        Embeddings of the two sides of each pair; they need not be normalised.
    together : Tensor of shape (batch,), bool or {0, 1}
        1 for a must-link, 0 for a cannot-link.

    Returns a scalar tensor (0 for an empty batch).
    """

    def __init__(self, margin: float = 0.5, online: bool = False):
        super().__init__()
        if not 0.0 < margin <= 2.0:
            raise ValueError(f"margin ({margin}) must be in (0, 2]: a cosine distance lies in [0, 2]")
        self.margin = margin
        self.online = online

    def forward(self, a: torch.Tensor, b: torch.Tensor, together: torch.Tensor) -> torch.Tensor:
        if a.shape != b.shape or a.ndim != 2 or together.shape != a.shape[:1]:
            raise ValueError(
                f"expected a, b of shape (batch, dim) and together of shape (batch,), "
                f"got {tuple(a.shape)}, {tuple(b.shape)}, {tuple(together.shape)}"
            )
        if a.shape[0] == 0:
            return a.sum() * 0.0  # keeps the graph, so backward() on an empty batch is a no-op
        distance = 1.0 - nn.functional.cosine_similarity(a.float(), b.float(), dim=1)
        return self.from_distance(distance, together)

    def from_distance(self, distance: torch.Tensor, together: torch.Tensor) -> torch.Tensor:
        """The same loss from precomputed cosine distances, shape (batch,).

        For callers that get the distances more cheaply than by pairing up rows, such as
        from the Gram matrix of a few hundred answers with thousands of pairs among them.
        """
        if distance.shape != together.shape or distance.ndim != 1:
            raise ValueError(
                f"expected distance and together of the same shape (batch,), "
                f"got {tuple(distance.shape)} and {tuple(together.shape)}"
            )
        if distance.shape[0] == 0:
            return distance.sum() * 0.0
        pos = together.bool()
        pos_loss = distance.pow(2)
        neg_loss = nn.functional.relu(self.margin - distance).pow(2)
        if self.online and pos.any() and (~pos).any():
            hard_pos = pos & (distance > distance[~pos].min())
            hard_neg = ~pos & (distance < distance[pos].max())
            # sentence-transformers sums the hard pairs; a mean over the batch keeps the scale
            # independent of the batch size, so a learning rate carries over between sizes.
            return (pos_loss * hard_pos + neg_loss * hard_neg).sum() / distance.shape[0]
        return 0.5 * torch.where(pos, pos_loss, neg_loss).mean()
