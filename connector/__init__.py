"""webinar-hubspot-connector: a webinar platform's Kafka activity into HubSpot Marketing Events."""

from connector.errors import ConnectorError

__all__ = ["ConnectorError", "__version__"]
__version__ = "0.1.0"
