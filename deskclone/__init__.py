"""DeskClone Sources: cross-cutting pieces (settings, CLI, the dev supervisor, Temporal setup)."""
