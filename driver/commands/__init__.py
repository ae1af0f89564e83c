"""One module per ``mirrorcast`` sub-command family; each exposes ``register(app)``."""
