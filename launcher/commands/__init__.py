"""The command line and its subcommands: the main job (serve) and the small tools beside it."""
