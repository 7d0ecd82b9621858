"""Example third-party driver."""
