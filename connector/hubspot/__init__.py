"""hubspot."""
