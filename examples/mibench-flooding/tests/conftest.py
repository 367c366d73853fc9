"""The mibench_run fixture (mibench.sdk.testing): a tiny grid run into the test's temporary directory."""

from mibench.sdk.testing import mibench_run  # noqa: F401 - a pytest fixture, found here by name
