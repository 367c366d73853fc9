"""mibench: a plugin-based benchmark for membership-inference attacks and defenses."""

__version__ = "0.2.0"
