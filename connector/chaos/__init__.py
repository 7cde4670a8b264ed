"""The chaos run: the whole pipeline under process kills, a broker restart and HubSpot faults,
judged by the independent oracle. `python -m connector.chaos --help`."""

from connector.chaos.driver import ChaosPlan, ChaosResult, run_chaos

__all__ = ["ChaosPlan", "ChaosResult", "run_chaos"]
