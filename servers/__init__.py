"""The lecture's programs, each runnable alone: `python -m servers.NAME --help`."""
