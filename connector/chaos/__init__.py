"""The chaos run: the whole pipeline under process kills, broker restarts (graceful and hard) and
HubSpot faults, judged by the independent oracle and by the workers' exits."""

from connector.chaos.driver import ChaosResult, run_chaos
from connector.chaos.plan import ChaosPlan
from connector.chaos.supervisor import WorkerExit

__all__ = ["ChaosPlan", "ChaosResult", "WorkerExit", "run_chaos"]
