"""The `assistant` command line, one module per group of commands; `main` is the entry point."""

from assistant.cli.main import build_parser, main

__all__ = ["build_parser", "main"]
