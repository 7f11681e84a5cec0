"""Baselines matched to NoProp-DT: same blocks, embedding, classifier and optimiser settings."""

from baselines.backprop import BackpropBaseline

__all__ = ["BackpropBaseline"]
