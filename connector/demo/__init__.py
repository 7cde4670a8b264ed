"""The demo and its synthetic input: what `connector demo` and `connector produce-sample` do.

- :mod:`.cluster`: a local Kafka cluster (the real broker where Java is present, else
  librdkafka's mock cluster);
- :mod:`.publish`: the platform's topics and a synthetic webinar published to them;
- :mod:`.run`: the whole pipeline on embedded defaults (local Kafka, the HubSpot sandbox,
  normalizer and sink) until HubSpot shows what the input predicts.
- :mod:`.installs`: `connector serve` in a thread, and customers installing the app through
  its install flow as their browsers do;
- :mod:`.accounts`: app mode end to end (`connector demo --accounts N`): N platform accounts
  install the app, each into its own HubSpot account, and each one's webinars must show there.

The commands parse options and print; what they say while working goes through a ``say``
callable. Importing the package imports none of its modules.
"""
