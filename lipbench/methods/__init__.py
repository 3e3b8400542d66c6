"""Lipschitz methods: each one is a small module behind the three hooks of `LipschitzMethod`."""
from lipbench.methods.base import LipschitzMethod, NoConstraint, SigmaEstimate
from lipbench.methods.clip import WeightClipping
from lipbench.methods.conv_spectral import ConvSpectralNormalization
from lipbench.methods.frobenius import FrobeniusClipping, FrobeniusPenalty
from lipbench.methods.gradient_penalty import GradientPenalty
from lipbench.methods.spectral import SpectralNormalization, SpectralProjection
from lipbench.methods.weight_penalty import L2Penalty, SpectralPenalty, WeightPenalty

__all__ = [
    "LipschitzMethod",
    "NoConstraint",
    "SigmaEstimate",
    "WeightClipping",
    "FrobeniusClipping",
    "FrobeniusPenalty",
    "GradientPenalty",
    "SpectralNormalization",
    "SpectralProjection",
    "ConvSpectralNormalization",
    "WeightPenalty",
    "L2Penalty",
    "SpectralPenalty",
]
