"""NoProp-DT (Li, Teh, Pascanu 2025): the method only; depends on torch, never on the harness."""

from noprop.blocks import DenoiseBlock
from noprop.dt import NoPropDT
from noprop.embeddings import LearnedEmbedding, OneHotEmbedding, PrototypeEmbedding, make_embedding
from noprop.schedule import Schedule, make_schedule
from noprop.settings import MethodSettings

__all__ = [
    "DenoiseBlock",
    "LearnedEmbedding",
    "MethodSettings",
    "NoPropDT",
    "OneHotEmbedding",
    "PrototypeEmbedding",
    "Schedule",
    "make_embedding",
    "make_schedule",
]
