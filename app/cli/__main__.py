"""`python -m longdesk.app.cli ARGS`: the command line without the window's entry point."""

from longdesk.app.cli.commands import main

raise SystemExit(main())
