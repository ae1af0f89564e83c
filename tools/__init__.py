"""Developer tools run by scripts/test (not shipped in the wheel)."""
