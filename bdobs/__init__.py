"""The ``bdobs`` command: one entry point for the whole bundle."""
