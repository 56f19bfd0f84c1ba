"""A numpy reference of DeepSeek-V4, written to be read: the oracle for llama.cpp and our kernels."""
