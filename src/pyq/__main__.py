"""``python -m pyq`` runs the CLI."""

from .cli import main

main()
