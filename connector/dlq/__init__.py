"""Dead letters: the envelope and headers, and what `connector dlq` inspects and redrives with.

envelope.py   the dead-letter record: original record + `__connect.errors.*`/`connector.errors.*`
record.py     a dead letter read back; filters.py which ones an operator means
account.py    whose a dead letter is (`--account`): its header, else its decoded value
inspect.py    counts and decoded views; history.py the `connector.redrive.*` headers
progress.py   what was redriven (a consumer group's offsets); redrive.py planning and sending
operations.py what `connector dlq` does: summarize topics, select, plan and execute a redrive
topic.py      the Kafka access (thin); errors.py the errors of inspection and redrive

The command (connector.cli.dlq) parses options and prints; operations.py does the work.
"""

from connector.dlq.envelope import DeadLetter, Stage, header_map

__all__ = ["DeadLetter", "Stage", "header_map"]
