"""MkDocs hooks: the reference pages' generated parts, made from the code at every build so they cannot drift.

- ``<!-- generated: grid schema -->``: every key of the grid file, from the pydantic models' JSON schema;
- ``<!-- generated: cli -->``: every command and option, from the click commands;
- ``<!-- generated: result columns -->``: every column of ``results.csv``, from the result row's fields.
"""

from __future__ import annotations

import click


def _cell(text: object) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")


def _type_of(schema: dict, defs: dict) -> str:
    if "$ref" in schema:
        return schema["$ref"].rsplit("/", 1)[-1]
    if "anyOf" in schema:
        return " or ".join(_type_of(s, defs) for s in schema["anyOf"])
    if "enum" in schema:
        return " / ".join(f"`{v}`" for v in schema["enum"])
    if "const" in schema:
        return f"`{schema['const']}`"
    kind = schema.get("type", "any")
    if kind == "array" and "items" in schema:
        return f"list of {_type_of(schema['items'], defs)}"
    return str(kind)


def _model_table(name: str, schema: dict, defs: dict) -> list[str]:
    lines = [f"### `{name}`", "", _cell(schema.get("description", "")), "", "| key | type | default | meaning |",
             "| --- | --- | --- | --- |"]
    required = set(schema.get("required", []))
    for key, prop in schema.get("properties", {}).items():
        default = "required" if key in required else f"`{prop['default']}`" if "default" in prop else ""
        lines.append(f"| `{key}` | {_cell(_type_of(prop, defs))} | {_cell(default)} | {_cell(prop.get('description', ''))} |")
    return lines + [""]


def grid_reference() -> str:
    from mibench.config.grid import Grid

    schema = Grid.model_json_schema()
    defs = schema.get("$defs", {})
    lines = _model_table("Grid (the file's top level)", schema, defs)
    for name, sub in sorted(defs.items()):
        if sub.get("type") == "object" and "properties" in sub:
            lines += _model_table(name, sub, defs)
    return "\n".join(lines)


def _command_lines(command: click.Command, path: str) -> list[str]:
    lines = [f"### `{path}`", "", _cell(command.help or ""), "", "| argument or option | meaning |", "| --- | --- |"]
    for param in command.params:
        if isinstance(param, click.Option):
            names = ", ".join(f"`{o}`" for o in param.opts + param.secondary_opts)
            lines.append(f"| {names} | {_cell(param.help or '')} |")
        else:
            lines.append(f"| `{param.human_readable_name}` | argument |")
    return lines + [""]


def cli_reference() -> str:
    from mibench.cli.main import main

    lines: list[str] = []
    for name in sorted(main.commands):
        lines += _command_lines(main.commands[name], f"mibench {name}")
    return "\n".join(lines)


def result_columns() -> str:
    from mibench.report.results import ResultRow

    lines = ["| column | type | default |", "| --- | --- | --- |"]
    for name, field in ResultRow.model_fields.items():
        annotation = getattr(field.annotation, "__name__", str(field.annotation))
        default = "required" if field.is_required() else f"`{field.default}`"
        lines.append(f"| `{name}` | {_cell(annotation)} | {_cell(default)} |")
    return "\n".join(lines)


GENERATED = {"grid schema": grid_reference, "cli": cli_reference, "result columns": result_columns}


def on_page_markdown(markdown: str, page, config, files) -> str:
    for marker, make in GENERATED.items():
        tag = f"<!-- generated: {marker} -->"
        if tag in markdown:
            markdown = markdown.replace(tag, make())
    return markdown
