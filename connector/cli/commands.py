"""Registers every sub-command module on the `main` group."""
