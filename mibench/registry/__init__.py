"""Plugin registration and loading: the registry of plugin classes, entry points, code digests."""
