"""Backends that hold a prefix and answer questions: local (llama.cpp) and hosted (OpenAI API)."""
