"""Pool names are ASCII: they end up in cloud resource names, which take ASCII only.

AWS Auto Scaling group and launch template names, Azure VM scale set names and Google Compute
Engine instance group names (RFC 1035 labels: ``[a-z]([-a-z0-9]*[a-z0-9])?``) are ASCII; a
homoglyph accepted by ``str.isalnum()`` would name a second pool that looks like the first.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from infra.config import ConfigError, config_from_text

DEMO = (Path(__file__).resolve().parents[2] / "stacks" / "Pulumi.demo.yaml").read_text()


@pytest.mark.parametrize(
    ("name", "character"),
    [
        ("w\u0435b", "U+0435"),  # Cyrillic small ie, looks like 'e'
        ("\u0430pi", "U+0430"),  # Cyrillic small a
        ("web\u0661", "U+0661"),  # Arabic-Indic digit one (isalnum, isdigit)
        ("\uff57eb", "U+FF57"),  # fullwidth w
    ],
)
def test_a_pool_name_with_a_non_ascii_character_is_refused_naming_it(
    name: str, character: str
) -> None:
    text = DEMO.replace("  mirrorcast:pools:\n    web:\n", f"  mirrorcast:pools:\n    {name}:\n", 1)
    assert name in text

    with pytest.raises(ConfigError) as caught:
        config_from_text(text, source="Pulumi.test.yaml")

    message = str(caught.value)
    assert "Pulumi.test.yaml:" in message and "pools" in message
    assert "non-ASCII character" in message and character in message, message
    assert "ASCII letters, digits and '-'" in message


def test_ascii_pool_names_with_digits_and_dashes_still_load() -> None:
    text = DEMO.replace("  mirrorcast:pools:\n    web:\n", "  mirrorcast:pools:\n    web-2:\n", 1)
    assert list(config_from_text(text, source="Pulumi.test.yaml").pools) == ["web-2"]
