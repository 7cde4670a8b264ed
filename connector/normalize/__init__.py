"""The attendance rules and state, pure: records in, commands out; no I/O, no clock.

normalizer.py  AttendanceNormalizer: one activity partition's state and its commands
person.py      one person's activity merged (Participation) and what HubSpot should show
               (AttendanceOutcome)
rules.py       who a record is about (Identity), the time window, Rejection
event.py       EventProjector: webinar descriptions into event commands
held.py        activity held until its webinar's description arrives
command.py     the commands the normalizer emits for the sink
collector.py   how the normalizer runs Python's garbage collector around its state

The Kafka drivers around them (the loop, the webinar table, the changelogs) are in
connector.runtime.
"""
