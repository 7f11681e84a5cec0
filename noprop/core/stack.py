"""The parts NoProp-DT and its backprop baseline share, built in one place so the two stay matched:
label embedding, T DenoiseBlocks and the linear classifier on z_T."""

from __future__ import annotations

from torch import Tensor, nn

from noprop.core.blocks import make_blocks
from noprop.core.embeddings import check_prototype_data, make_embedding
from noprop.core.settings import CommonSettings


class DenoiserStack(nn.Module):
    """Embedding W [classes, d], blocks (an nn.ModuleList of T DenoiseBlocks) and classifier Linear(d, classes)."""

    def __init__(self, s: CommonSettings, prototype_data: tuple[Tensor, Tensor] | None = None,
                 generator_seed: int = 0) -> None:
        super().__init__()
        check_prototype_data(s, prototype_data)
        self.s = s
        self.embedding = make_embedding(s.embedding, s.num_classes, s.embed_dim, prototype_data, generator_seed)
        self.blocks = make_blocks(s)
        self.dim = self.embedding.W.shape[1]
        self.classifier = nn.Linear(self.dim, s.num_classes)

    def block_parameter_counts(self) -> list[int]:
        return [sum(p.numel() for p in b.parameters()) for b in self.blocks]

    def label_embedding(self) -> Tensor:
        """The current class embeddings W [num_classes, d] (for the report's embedding figures)."""
        return self.embedding.W.detach()
