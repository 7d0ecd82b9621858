"""Drivers that ship with sessions-core: ``memory`` and ``cookie``."""
