"""webinar-hubspot-connector: a webinar platform's Kafka activity into HubSpot Marketing Events."""

from connector import native
from connector.errors import ConnectorError

# Before anything imports a compiled module: a stale build is refused, NATIVE_CORE=0 runs the
# sources (connector/native.py).
native.on_package_import()

__all__ = ["ConnectorError", "__version__"]
__version__ = "0.1.0"
