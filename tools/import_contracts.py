"""An import-linter contract for private modules: a package's ``_mod`` is imported only inside it.

import-linter's ``forbidden`` contract cannot say "any module whose name starts with an
underscore" (a wildcard replaces a whole module name), so this contract type does. The
contract lists the project's packages (``infra.config``, ``infra``, ``forecasting``,
``policies``, ``driver``); each module belongs to the longest listed package holding it. A
module with a private segment (``_name``, not a dunder) may be imported only by modules of its
own package: ``infra.config._model`` by ``infra.config.*`` but not by ``infra.aws`` nor
``driver``; ``forecasting.models._imports`` by any ``forecasting`` module. Registered in
pyproject.toml under ``[tool.importlinter] contract_types``.
"""

from __future__ import annotations

from typing import Any

from importlinter import Contract, ContractCheck, fields, output

__all__ = ["PrivateModulesContract", "is_private", "package_of"]


def is_private(module: str) -> bool:
    """True when a segment of ``module``'s name starts with ``_`` (dunders such as ``__main__`` aside)."""
    return any(
        part.startswith("_") and not (part.startswith("__") and part.endswith("__"))
        for part in module.split(".")
    )


def package_of(module: str, packages: list[str]) -> str | None:
    """The longest of ``packages`` that is ``module`` or holds it."""
    holding = [p for p in packages if module == p or module.startswith(p + ".")]
    return max(holding, key=len) if holding else None


class PrivateModulesContract(Contract):
    """No module imports a private module of another package."""

    type_name = "private_modules"

    packages = fields.ListField(subfield=fields.StringField())

    def check(self, graph: Any, verbose: bool) -> ContractCheck:
        packages = list(self.packages)  # type: ignore[call-overload]
        violations: list[tuple[str, str, int | None]] = []
        for importer in sorted(graph.modules):
            home = package_of(importer, packages)
            if home is None:
                continue  # an external package
            for imported in sorted(graph.find_modules_directly_imported_by(importer)):
                owner = package_of(imported, packages)
                if owner is None or owner == home or not is_private(imported[len(owner) :]):
                    continue
                details = graph.get_import_details(importer=importer, imported=imported)
                line = details[0]["line_number"] if details else None
                violations.append((importer, imported, line))
        return ContractCheck(kept=not violations, metadata={"violations": violations})

    def render_broken_contract(self, check: ContractCheck) -> None:
        for importer, imported, line in check.metadata["violations"]:
            where = f" (l.{line})" if line is not None else ""
            output.print_error(f"{importer} imports the private {imported}{where}", bold=False)
        output.new_line()
