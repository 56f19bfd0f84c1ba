"""Local model files: GGUF inspection, the default model, memory planning."""
