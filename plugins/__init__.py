"""mibench's built-in plugins. Each module registers through the same hooks as an
outside package would; mibench.plugins.BUILTIN_PLUGINS lists them."""
