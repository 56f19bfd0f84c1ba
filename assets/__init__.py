"""Icons, themes and prompt templates, read through importlib.resources."""
