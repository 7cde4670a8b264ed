"""Dead letters: the envelope and headers (inspection and redrive come with `connector dlq`)."""

from connector.dlq.envelope import DeadLetter, Stage, header_map

__all__ = ["DeadLetter", "Stage", "header_map"]
