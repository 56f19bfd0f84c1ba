"""What is specific to DeepSeek-V4: chat encoding, KV formula, tiny GGUF writer, numpy reference."""
