"""The command line's parts: argument parsing, key commands, times and tables."""
