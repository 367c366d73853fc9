"""Plugins that exist only for the tests (registered by the tests themselves)."""
