"""Avro serde: the schema catalog and the raw / single-object / Confluent framings.

Import from the modules themselves (`catalog`, `codec`, `record`, `topic`, `registry`,
`settings`): this package imports nothing, so the pure parts (records, schemas, codecs) never
pull in the schema registry's HTTP client or Kafka with them.
"""
