# Build Longdesk's Windows bundle (dist\longdesk\) and its installer with Inno Setup 6.
#
#   powershell -ExecutionPolicy Bypass -File packaging\windows\build.ps1 [-Accel vulkan|cuda|cpu]
#
# Needs: Python 3.11-3.13 (the py launcher), Visual Studio 2022 Build Tools (C++), CMake, and
# for -Accel vulkan the Vulkan SDK (VULKAN_SDK set), for -Accel cuda the CUDA 12 toolkit or
# NVIDIA's PyPI wheels (packaging/recipes/cuda.toml); Inno Setup 6 (ISCC.exe) for the installer.
# NOT RUN in this project's CI: written for Windows 10/11 x64 from the steps in
# docs/packaging.md.
param(
    [ValidateSet("vulkan", "cuda", "cpu")]
    [string]$Accel = "vulkan"
)
$ErrorActionPreference = "Stop"
Set-Location (Join-Path $PSScriptRoot "..\..")

# .venv with llama-cpp-python built for $Accel, then PyInstaller (packaging\pyinstaller\longdesk.spec):
# dist\longdesk\longdesk.exe (console: the command line) and longdeskw.exe (the window), started
# offscreen once to check the window and print size and start-to-window time.
$env:ACCEL = $Accel
py -3.11 packaging\bootstrap.py bundle
if ($LASTEXITCODE -ne 0) { throw "packaging\bootstrap.py bundle failed ($LASTEXITCODE)" }

$version = (Select-String -Path app\__init__.py -Pattern '^__version__ = "(.*)"').Matches[0].Groups[1].Value
& dist\longdesk\longdesk.exe --version
if ($LASTEXITCODE -ne 0) { throw "the bundled longdesk.exe does not start" }

$iscc = Get-Command ISCC.exe -ErrorAction SilentlyContinue
if ($iscc) { $iscc = $iscc.Source } else { $iscc = Join-Path ${env:ProgramFiles(x86)} "Inno Setup 6\ISCC.exe" }
if (-not (Test-Path $iscc)) { throw "Inno Setup 6 is not installed (winget install JRSoftware.InnoSetup)" }
& $iscc "/DAppVersion=$version" "/DAccel=$Accel" packaging\windows\longdesk.iss
if ($LASTEXITCODE -ne 0) { throw "ISCC failed ($LASTEXITCODE)" }
Get-Item "dist\Longdesk-$version-windows-x86_64-$Accel-setup.exe"
