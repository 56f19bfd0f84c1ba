"""Which model architectures the bundled llama.cpp runs, and what Longdesk knows of them."""

from __future__ import annotations

from importlib import resources

from longdesk.engine.models.gguf_header import GGUFHeader

# Architectures that need more than text in and text out (encoders, speech, vision towers).
_NOT_CHAT = frozenset(
    {
        "bert",
        "modern-bert",
        "nomic-bert",
        "nomic-bert-moe",
        "neo-bert",
        "jina-bert-v2",
        "jina-bert-v3",
        "eurobert",
        "t5encoder",
        "wavtokenizer-dec",
        "gemma-embedding",
        "llama-embed",
        "qwen3tts",
        "pockettts",
        "eagle3",
        "dflash",
        "gemma4-assistant",
    }
)


def supported_architectures() -> frozenset[str]:
    """Architectures of the llama.cpp bundled with llama-cpp-python 0.3.36 (its LLM_ARCH_NAMES)."""
    listing = resources.files("longdesk.assets").joinpath("llama_cpp_architectures.txt")
    text = listing.read_text(encoding="utf-8")
    return frozenset(line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#"))


def check_supported(header: GGUFHeader) -> str:
    """Empty when Longdesk can chat with this model, else the reason in one line."""
    arch = header.architecture
    if not arch:
        return f"{header.path}: the GGUF names no architecture (general.architecture is missing)"
    if arch not in supported_architectures():
        return f"{header.path}: unknown model architecture {arch!r}; the bundled llama.cpp cannot run it"
    if arch in _NOT_CHAT:
        return f"{header.path}: {arch!r} is not a text-generation model"
    if arch == "deepseek4":  # llama.cpp aborts on some malformed V4 files: check them first
        from longdesk.engine.dsv4.validate import check_dsv4

        return check_dsv4(header)
    return ""
