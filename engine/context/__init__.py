"""Packing a Corpus into the byte-stable prefix a model reads, with its exact token budget."""
