"""Entry point of the ``mibench`` command."""

from __future__ import annotations

import click

import mibench
from mibench.cli.plugins_cmd import plugins_command
from mibench.cli.roc_cmd import roc_command
from mibench.cli.run_cmd import run_command
from mibench.cli.validate_cmd import validate_command


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(mibench.__version__, prog_name="mibench")
def main() -> None:
    """mibench: benchmark membership-inference attacks against defenses."""


main.add_command(plugins_command)
main.add_command(validate_command)
main.add_command(run_command)
main.add_command(roc_command)
