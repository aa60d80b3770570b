"""The `c2f` command: one thin module per subcommand."""
