#!/bin/bash
# Build Longdesk.app and a .dmg on macOS 12+ (Apple silicon: the Metal build of llama.cpp).
#
#   packaging/macos/build.sh            # dist/Longdesk.app and dist/Longdesk-VERSION-macos-ARCH.dmg
#
# Needs: Xcode command line tools (clang, cmake via pip's cmake wheel, codesign, hdiutil) and
# Python 3.11-3.13 as python3. NOT RUN in this project's CI: written for macOS from the steps
# docs/packaging.md describes, and checked only for shell syntax on Linux.
#
# Signing: ad-hoc by default (runs on the machine that built it; another Mac asks the user to
# allow it in System Settings > Privacy & Security). With LONGDESK_SIGN_IDENTITY="Developer ID
# Application: ..." the app is signed with the hardened runtime, and with LONGDESK_NOTARY_PROFILE
# (a `xcrun notarytool store-credentials` profile) the .dmg is notarized and stapled.
set -euo pipefail
cd "$(dirname "$0")/../.."
[ "$(uname -s)" = Darwin ] || { echo "packaging/macos/build.sh runs on macOS only" >&2; exit 2; }

export ACCEL="${ACCEL:-metal}"
# Set up .venv with the Metal llama-cpp-python (packaging/recipes/metal.toml), run PyInstaller
# with packaging/pyinstaller/longdesk.spec (its BUNDLE step makes dist/Longdesk.app with the
# Info.plist document types), start the folder build offscreen and print size and start time.
python3 packaging/bootstrap.py bundle

version=$(sed -n 's/^__version__ = "\(.*\)"/\1/p' app/__init__.py)
arch=$(uname -m)
app=dist/Longdesk.app
dmg="dist/Longdesk-${version}-macos-${arch}.dmg"
[ -d "$app" ] || { echo "PyInstaller made no $app" >&2; exit 1; }

entitlements=packaging/macos/entitlements.plist
if [ -n "${LONGDESK_SIGN_IDENTITY:-}" ]; then
  codesign --force --deep --options runtime --timestamp --entitlements "$entitlements" \
    --sign "$LONGDESK_SIGN_IDENTITY" "$app"
else
  codesign --force --deep --sign - "$app"
fi
codesign --verify --deep --strict "$app"

# The app must start from its bundle (not only from dist/longdesk): the window, offscreen.
home=$(mktemp -d)
LONGDESK_HOME="$home" LONGDESK_SMOKE_WINDOW="$home/window.png" QT_QPA_PLATFORM=offscreen \
  "$app/Contents/MacOS/longdesk" | grep -q "LONGDESK_SMOKE window-shown"
LONGDESK_HOME="$home" "$app/Contents/MacOS/longdesk" --version
rm -rf "$home"

# A drag-to-Applications disk image.
stage=$(mktemp -d)
cp -R "$app" "$stage/"
ln -s /Applications "$stage/Applications"
rm -f "$dmg"
hdiutil create -volname "Longdesk" -srcfolder "$stage" -fs HFS+ -format UDZO -ov "$dmg"
rm -rf "$stage"

if [ -n "${LONGDESK_SIGN_IDENTITY:-}" ]; then
  codesign --force --timestamp --sign "$LONGDESK_SIGN_IDENTITY" "$dmg"
  if [ -n "${LONGDESK_NOTARY_PROFILE:-}" ]; then
    xcrun notarytool submit "$dmg" --keychain-profile "$LONGDESK_NOTARY_PROFILE" --wait
    xcrun stapler staple "$dmg"
  fi
fi
echo "built $dmg ($(du -sh "$dmg" | cut -f1))"
