"""A CUDA build of llama.cpp finds its CUDA runtime and cuBLAS from NVIDIA's PyPI wheels."""

from __future__ import annotations

from pathlib import Path

from longdesk.engine import llama_libs


def _touch(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"")
    return path


def test_a_cpu_build_loads_nothing() -> None:
    # The suite's llama.cpp is the CPU build: there is nothing to preload, and importing works.
    assert llama_libs.preload_cuda_libraries() == []
    assert not llama_libs.is_cuda_build(llama_libs._package_dirs("llama_cpp"))
    import llama_cpp

    assert llama_cpp.__version__


def test_cuda_builds_are_told_apart_by_their_backend_library(tmp_path: Path) -> None:
    cpu, cuda = tmp_path / "cpu" / "llama_cpp", tmp_path / "cuda" / "llama_cpp"
    _touch(cpu / "lib" / "libggml-cpu.so")
    _touch(cuda / "lib" / "libggml-cpu.so")
    _touch(cuda / "lib" / "libggml-cuda.so")
    assert not llama_libs.is_cuda_build([cpu])
    assert llama_libs.is_cuda_build([cuda])


def test_runtime_libraries_are_loaded_in_dependency_order_from_the_first_folder_with_each(
    tmp_path: Path,
) -> None:
    a, b = tmp_path / "a" / "nvidia", tmp_path / "b" / "nvidia"
    cublas = _touch(a / "cu13" / "lib" / "libcublas.so.13")
    cudart = _touch(b / "cu13" / "lib" / "libcudart.so.13")
    lt_a = _touch(a / "cu13" / "lib" / "libcublasLt.so.13")
    _touch(b / "cu13" / "lib" / "libcublasLt.so.13")
    assert llama_libs.cuda_library_paths([a, b]) == [cudart, lt_a, cublas]
    assert llama_libs.cuda_library_paths([tmp_path / "none"]) == []
