#!/bin/sh
# Install the unpacked Longdesk bundle for this user (default) or system-wide.
#
#   ./install.sh                 # into ~/.local: opt/longdesk, bin/longdesk, the menu entry, icons
#   ./install.sh --prefix /usr/local   # system-wide (as root)
#   ./install.sh --uninstall [--prefix DIR]
#
# The bundle also runs where it was unpacked, without installing: ./longdesk/longdesk
set -eu

here=$(cd "$(dirname "$0")" && pwd)
prefix="${HOME}/.local"
action=install
while [ $# -gt 0 ]; do
  case "$1" in
    --prefix) prefix="$2"; shift 2 ;;
    --prefix=*) prefix="${1#--prefix=}"; shift ;;
    --uninstall) action=uninstall; shift ;;
    -h|--help) sed -n '2,8p' "$0"; exit 0 ;;
    *) echo "install.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done

app_dir="$prefix/opt/longdesk"
bin_dir="$prefix/bin"
share="$prefix/share"
sizes="16 22 24 32 48 64 128 256 512"

refresh() {
  command -v update-desktop-database >/dev/null 2>&1 && update-desktop-database -q "$share/applications" || true
  command -v gtk-update-icon-cache >/dev/null 2>&1 && gtk-update-icon-cache -q -t "$share/icons/hicolor" || true
}

if [ "$action" = uninstall ]; then
  rm -rf "$app_dir"
  rm -f "$bin_dir/longdesk" "$share/applications/longdesk.desktop" \
        "$share/metainfo/org.longdesk.Longdesk.metainfo.xml" "$share/icons/hicolor/scalable/apps/longdesk.svg"
  for s in $sizes; do rm -f "$share/icons/hicolor/${s}x${s}/apps/longdesk.png"; done
  refresh
  echo "Longdesk removed from $prefix (your settings, sessions and models stay in your user folders)"
  exit 0
fi

mkdir -p "$prefix/opt" "$bin_dir" "$share/applications" "$share/metainfo" "$share/icons/hicolor/scalable/apps"
# Copy beside the old version, then swap: a failed copy leaves the installed one working.
rm -rf "$app_dir.new"
cp -R "$here/longdesk" "$app_dir.new"
rm -rf "$app_dir.old"
[ -d "$app_dir" ] && mv "$app_dir" "$app_dir.old"
mv "$app_dir.new" "$app_dir"
rm -rf "$app_dir.old"
ln -sf "$app_dir/longdesk" "$bin_dir/longdesk"

desktop="$share/applications/longdesk.desktop"
case ":$PATH:" in
  *":$bin_dir:"*) cp "$here/share/applications/longdesk.desktop" "$desktop" ;;
  # Not on PATH: the menu entry names the program by its full path.
  *) sed -e "s|^Exec=longdesk |Exec=$bin_dir/longdesk |" -e "s|^TryExec=longdesk\$|TryExec=$bin_dir/longdesk|" \
       "$here/share/applications/longdesk.desktop" > "$desktop" ;;
esac
cp "$here/share/metainfo/org.longdesk.Longdesk.metainfo.xml" "$share/metainfo/"
cp "$here/share/icons/hicolor/scalable/apps/longdesk.svg" "$share/icons/hicolor/scalable/apps/"
for s in $sizes; do
  mkdir -p "$share/icons/hicolor/${s}x${s}/apps"
  cp "$here/share/icons/hicolor/${s}x${s}/apps/longdesk.png" "$share/icons/hicolor/${s}x${s}/apps/"
done
refresh
echo "Longdesk installed in $app_dir; start it from the menu or with: $bin_dir/longdesk"
