"""``mirrorcast schema``: the stack config's JSON Schema (for editors and CI validation)."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Annotated, Any

import typer

from driver.commands._common import out_console, print_json, project_root, user_errors
from infra.config import MirrorcastConfig

__all__ = ["config_schema", "register"]

logger = logging.getLogger(__name__)


def config_schema() -> dict[str, Any]:
    """The JSON Schema of everything under ``mirrorcast:``."""
    schema = MirrorcastConfig.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "mirrorcast stack config"
    return schema


def register(app: typer.Typer) -> None:
    @app.command("schema")
    def schema(
        write: Annotated[
            bool, typer.Option("--write", help="Also write it to stacks/schema.json.")
        ] = False,
        json_output: Annotated[
            bool, typer.Option("--json", help="Accepted for symmetry; the schema is JSON.")
        ] = False,
    ) -> None:
        """Print the JSON Schema of the stack config (the mirrorcast:* keys)."""
        data = config_schema()
        with user_errors():
            if write:
                path: Path = project_root() / "stacks" / "schema.json"
                path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
                if not json_output:
                    out_console.print(f"wrote {path}")
                    return
        print_json(data)
