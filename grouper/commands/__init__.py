"""One module per command family; each has ``register(subparsers)``."""
