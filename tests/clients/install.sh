#!/usr/bin/env bash
# Install the editors that tests/clients drives: Neovim, Emacs (no X) and eglot (Debian's
# Emacs 28 has no built-in eglot). Idempotent and quiet; needs root (or sudo) for apt-get.
set -euo pipefail

packages=(neovim emacs-nox elpa-eglot)
missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if ! command -v apt-get >/dev/null; then
    echo "tests/clients/install.sh: no apt-get; install ${missing[*]} yourself" >&2
    exit 1
fi
sudo=()
[ "$(id -u)" -eq 0 ] || sudo=(sudo)
export DEBIAN_FRONTEND=noninteractive
# refresh the package lists only when one of them cannot be found as they are
if ! apt-cache show "${missing[@]}" >/dev/null 2>&1; then
    "${sudo[@]}" apt-get update -qq
fi
"${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
