"""Synthetic platform traffic (seeded)."""

from connector.sample.generator import Sample, SampleSpec, generate

__all__ = ["Sample", "SampleSpec", "generate"]
