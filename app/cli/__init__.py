"""The command line: `longdesk ask|inspect|models|worker|batch` (``commands``), the batch runs
(``batch`` with its targets, consent and pricing) and the hosted `ask` (``hosted_ask``).

Only the CLI imports these; what the window shares with it stays in ``app``.
"""
