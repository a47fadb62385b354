"""The exchange service."""
