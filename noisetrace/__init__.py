"""noisetrace: the package behind the `noisetrace` command (demo data and the command group)."""
