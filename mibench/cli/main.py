"""Entry point of the ``mibench`` command.

Only click and the command modules load before a command starts; each command imports
torch, the plugins and the engine when it needs them.
"""

from __future__ import annotations

import click

import mibench
from mibench.cli.common import interrupted, sigterm_stops
from mibench.cli.exposed_cmd import exposed_command
from mibench.cli.leaderboard_cmd import leaderboard_command
from mibench.cli.new_plugin_cmd import new_plugin_command
from mibench.cli.plugins_cmd import plugins_command
from mibench.cli.report_cmd import report_command
from mibench.cli.roc_cmd import roc_command
from mibench.cli.run_cmd import run_command
from mibench.cli.validate_cmd import validate_command


class MibenchGroup(click.Group):
    """The command group; Ctrl-C in any command exits 130 with one line, no traceback."""

    def invoke(self, ctx: click.Context):
        try:
            with sigterm_stops():
                return super().invoke(ctx)
        except KeyboardInterrupt as exc:
            interrupted(exc=exc)


@click.group(cls=MibenchGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(mibench.__version__, prog_name="mibench")
def main() -> None:
    """mibench: benchmark membership-inference attacks against defenses."""


main.add_command(plugins_command)
main.add_command(validate_command)
main.add_command(run_command)
main.add_command(roc_command)
main.add_command(leaderboard_command)
main.add_command(report_command)
main.add_command(exposed_command)
main.add_command(new_plugin_command)
