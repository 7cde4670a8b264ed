"""HubSpot-path handlers, one module per concept; `admin` holds the `/_sandbox` endpoints."""
