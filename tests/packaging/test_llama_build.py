"""The llama-cpp-python build recipe: never AMX, ISA from the CPU, and a key that tells CPUs apart."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "packaging"))
import llama_build


def test_isa_flags_follow_the_cpu() -> None:
    avx2_only = llama_build.isa_cmake_args({"avx", "avx2", "fma", "f16c", "bmi2", "sse4_2"})
    assert "-DGGML_AVX2=ON" in avx2_only
    assert "-DGGML_AVX512=OFF" in avx2_only
    avx512 = llama_build.isa_cmake_args({"avx", "avx2", "avx512f", "avx512_vnni", "amx_tile"})
    assert "-DGGML_AVX512=ON" in avx512
    assert "-DGGML_AVX512_VNNI=ON" in avx512
    assert not any("AMX" in a and a.endswith("=ON") for a in avx512)


@pytest.mark.parametrize("accel", ["cpu", "cuda", "vulkan"])
def test_recipes_never_enable_amx(accel: str) -> None:
    args = llama_build.cmake_args_for(llama_build.load_recipe(accel))
    assert "-DGGML_AMX_TILE=OFF" in args
    assert "-DGGML_NATIVE=OFF" in args or "-DGGML_NATIVE=ON" in args


def test_cache_key_differs_by_cpu_and_recipe(monkeypatch: pytest.MonkeyPatch) -> None:
    base = llama_build.cmake_args_for(llama_build.load_recipe("cpu"))
    k1 = llama_build.cache_key("cpu", base, sys.executable)
    monkeypatch.setattr(llama_build, "cpu_flags", lambda: {"avx", "avx2", "avx512f"})
    k2 = llama_build.cache_key(
        "cpu", llama_build.cmake_args_for(llama_build.load_recipe("cpu")), sys.executable
    )
    k3 = llama_build.cache_key("cuda", base, sys.executable)
    assert len({k1, k2, k3}) == 3
    assert k1 == llama_build.cache_key("cpu", base, sys.executable)


def test_unknown_recipe_names_the_known_ones() -> None:
    with pytest.raises(SystemExit, match="known: cpu, cuda, metal, vulkan"):
        llama_build.load_recipe("rocm")


def test_installed_build_is_the_cached_one() -> None:
    """The venv's llama_cpp is the pinned release, built by the recipe setup chose (``ACCEL``).

    The pin is read from the installed distribution's metadata and the marker is compared with
    the cache key of the recipe this environment names, so the test holds under ``ACCEL=cuda``
    as under the default cpu build.
    """
    import importlib.util
    import os
    import re
    from importlib import metadata

    requires = metadata.requires("longdesk") or []
    pins = [r for r in requires if re.match(r"llama-cpp-python\s*==", r)]
    assert len(pins) == 1, requires
    pinned = pins[0].split("==", 1)[1].strip()
    assert metadata.version("llama_cpp_python") == pinned
    assert pinned == llama_build.LLAMA_CPP_PYTHON_VERSION  # the build script compiles the pinned one

    spec = importlib.util.find_spec("llama_cpp")
    assert spec is not None
    assert spec.submodule_search_locations
    marker = Path(spec.submodule_search_locations[0], "LONGDESK_BUILD").read_text().strip()
    accel = os.environ.get("ACCEL", "cpu")
    args = llama_build.cmake_args_for(llama_build.load_recipe(accel))
    assert marker == llama_build.cache_key(accel, args, sys.executable)
