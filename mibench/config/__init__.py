"""Grid files: YAML with line numbers, validated by pydantic, plugins resolved."""
