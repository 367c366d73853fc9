"""The three example plugin packages exactly as they were written against the 0.2 SDK (frozen copies).

They must keep running unchanged until mibench 0.4, through the SDK's adapters, with
DeprecationWarnings (tests/test_sdk_compat.py). Do not update them: examples/ holds the
current versions.
"""
