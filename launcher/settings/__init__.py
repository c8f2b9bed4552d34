"""The launcher's settings: the options table, value parsers, the command line and the config file, merged
into one Settings. It imports nothing of launcher/ above the ground floor, so every part can read it."""
