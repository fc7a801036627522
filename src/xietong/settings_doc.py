"""The settings table of docs/operations.md, generated from the Settings classes.

python -m xietong.settings_doc
"""

from __future__ import annotations

from pydantic_settings import BaseSettings

from xietong.config import Settings


def rows() -> list[tuple[str, str, str]]:
    table: list[tuple[str, str, str]] = []
    for name, field in Settings.model_fields.items():
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseSettings):
            prefix = str(annotation.model_config.get("env_prefix", ""))
            for sub_name, sub in annotation.model_fields.items():
                default = sub.default if sub.default_factory is None else []
                table.append((f"{prefix}{sub_name}".upper(), _show(default), sub.description or ""))
        else:
            table.append((f"XIETONG_{name}".upper(), _show(field.default), field.description or ""))
    return table


def _show(value: object) -> str:
    if value is None or value == "":
        return "(empty)"
    return str(value)


def markdown() -> str:
    lines = ["| variable | default | meaning |", "| --- | --- | --- |"]
    for variable, default, meaning in rows():
        lines.append(f"| `{variable}` | `{default}` | {meaning} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(markdown(), end="")
