"""Built-in canary designs (REFERENCE §8): mislabeled, noise, blank and duplicated canaries."""
