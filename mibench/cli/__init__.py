"""The ``mibench`` command, one module per subcommand."""
