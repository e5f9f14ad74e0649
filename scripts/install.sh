#!/usr/bin/env bash
# Installs edgemesh on an edge host: binary, systemd unit, default config, PSK.
#   install.sh [--binary PATH] [--no-start] [--uninstall] [--destdir DIR]
# DESTDIR (env or --destdir) installs into a scratch root and never touches systemd.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
binary=""
start=1
uninstall=0
DESTDIR=${DESTDIR:-}

usage() {
  sed -n '2,4p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
}
die() { echo "install.sh: $*" >&2; exit 1; }
say() { echo "install.sh: $*"; }

while [ $# -gt 0 ]; do
  case "$1" in
    --binary) [ $# -ge 2 ] || die "--binary needs a path"; binary=$2; shift 2 ;;
    --no-start) start=0; shift ;;
    --uninstall) uninstall=1; shift ;;
    --destdir) [ $# -ge 2 ] || die "--destdir needs a folder"; DESTDIR=$2; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) usage >&2; die "unknown argument \"$1\"" ;;
  esac
done

bin_path="$DESTDIR/usr/local/bin/edgemesh"
unit_path="$DESTDIR/etc/systemd/system/edgemesh.service"
conf_dir="$DESTDIR/etc/edgemesh"
state_dir="$DESTDIR/var/lib/edgemesh"
use_systemd=0
if [ -z "$DESTDIR" ] && command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then use_systemd=1; fi

if [ "$uninstall" = 1 ]; then
  if [ "$use_systemd" = 1 ]; then
    systemctl disable --now edgemesh.service 2>/dev/null || true
  fi
  if [ -x "$bin_path" ] && [ -z "$DESTDIR" ]; then "$bin_path" cleanup --config "$conf_dir/edgemesh.yaml" || true; fi
  rm -f "$bin_path" "$unit_path"
  rm -rf "$conf_dir"
  [ "$use_systemd" = 1 ] && systemctl daemon-reload
  say "removed the binary, the unit and $conf_dir; kept the state in $state_dir"
  exit 0
fi

if [ -z "$binary" ]; then
  arch=$(uname -m)
  for c in "$here/edgemesh" "$here/edgemesh-$arch-unknown-linux-gnu" "$here/../dist/edgemesh-$arch-unknown-linux-gnu"; do
    if [ -f "$c" ]; then binary=$c; break; fi
  done
  [ -n "$binary" ] || die "no binary given and none found next to this script; use --binary PATH"
fi
[ -f "$binary" ] || die "binary \"$binary\" does not exist"

unit_src=""
for c in "$here/edgemesh.service" "$here/../systemd/edgemesh.service"; do
  if [ -f "$c" ]; then unit_src=$c; break; fi
done
[ -n "$unit_src" ] || die "edgemesh.service not found next to this script or in ../systemd/"

install -d -m 0755 "$DESTDIR/usr/local/bin" "$DESTDIR/etc/systemd/system" "$conf_dir"
install -d -m 0700 "$state_dir"
install -m 0755 "$binary" "$bin_path"
install -m 0644 "$unit_src" "$unit_path"
say "installed $bin_path and $unit_path"

if [ -e "$conf_dir/edgemesh.yaml" ]; then
  say "kept the existing $conf_dir/edgemesh.yaml"
else
  tmp=$(mktemp)
  "$bin_path" config defaults >"$tmp" || { rm -f "$tmp"; die "\"$bin_path config defaults\" failed; is the binary for this machine?"; }
  install -m 0644 "$tmp" "$conf_dir/edgemesh.yaml"
  rm -f "$tmp"
  say "wrote the default config to $conf_dir/edgemesh.yaml (edit nodeName, relayNodes, …)"
fi

if [ -e "$conf_dir/psk" ]; then
  say "kept the existing PSK $conf_dir/psk"
else
  umask 077
  if command -v openssl >/dev/null 2>&1; then openssl rand -base64 32 >"$conf_dir/psk"; else head -c 32 /dev/urandom | base64 >"$conf_dir/psk"; fi
  chmod 0600 "$conf_dir/psk"
  say "generated a new PSK in $conf_dir/psk: copy the same file to every node of the cluster"
fi

if [ "$use_systemd" = 1 ]; then
  systemctl daemon-reload
  if [ "$start" = 1 ]; then
    systemctl enable --now edgemesh.service
    say "edgemesh is enabled and started (journalctl -u edgemesh -f)"
  else
    systemctl enable edgemesh.service
    say "edgemesh is enabled; start it with: systemctl start edgemesh"
  fi
else
  say "systemd not touched (DESTDIR set or systemd not running)"
fi
