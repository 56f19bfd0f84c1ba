"""Long-context evaluation harness: needles and citations over the Bible and a codebase."""
