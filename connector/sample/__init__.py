"""Synthetic platform traffic (seeded), and the independent oracle that judges the outcome.

generator.py  seeded, realistic platform traffic; publish.py  published as the platform does
oracle.py     what HubSpot must show, computed straight from the contract's text
view.py       what a HubSpot sandbox shows, in the oracle's terms
"""

from connector.sample.generator import Sample, SampleSpec, generate

__all__ = ["Sample", "SampleSpec", "generate"]
