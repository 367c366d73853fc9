"""``python -m mibench`` runs the command line."""

from mibench.cli.main import main

main()
