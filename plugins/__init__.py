"""mibench's built-in plugins. Each module registers through the same hooks as an
outside package would; mibench.registry.loading.BUILTIN_PLUGINS lists them."""
