#!/usr/bin/env bash
# Real VS Code (code-server) in headless Chromium, with the llmref VSIX installed in a fresh
# profile: hover in code and in Chinese notes, completion with its details card, the search
# QuickPick and the entry preview (its Source link, a second entry in the same tab); opt-in
# step no-python (run it with a LLMREF_TEST_PYTHON that does not exist): the no-Python error
# and its "Open Settings" button.
# Screenshots go to ${LLMREF_ARTIFACTS:-<repo>/artifacts}/vscode.
#
#   bash tests/vscode/install.sh          # once, as root (~3.5 min)
#   bash tests/vscode/run.sh extension/llmref-linux-x64.vsix
#
# Env: LLMREF_VSCODE_TOOLS (where install.sh put the tools, default /opt/llmref-vscode),
#      LLMREF_TEST_PYTHON (-> the llmref.python.interpreter setting), LLMREF_ARTIFACTS,
#      LLMREF_VSCODE_KEEP=1 (keep the temp profile/workspace even on success),
#      LLMREF_VSCODE_STEPS (comma list of steps to run, default all but no-python).
# Exit 0 only when every step passed. code-server is always stopped by its process group.
set -euo pipefail

HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
[ $# -eq 1 ] || { echo "usage: $0 path/to/extension.vsix" >&2; exit 2; }
VSIX="$(realpath "$1")"
[ -f "$VSIX" ] || { echo "run.sh: no VSIX at $VSIX" >&2; exit 2; }

TOOLS="${LLMREF_VSCODE_TOOLS:-/opt/llmref-vscode}"
CODE_SERVER="$TOOLS/code-server/bin/code-server"
NODE_BIN="$TOOLS/node/bin"
ARTIFACTS="${LLMREF_ARTIFACTS:-$ROOT/artifacts}/vscode"
for f in "$CODE_SERVER" "$NODE_BIN/node" "$TOOLS/playwright/node_modules/playwright-core" /usr/bin/chromium; do
    [ -e "$f" ] || { echo "run.sh: missing $f: run tests/vscode/install.sh (as root)" >&2; exit 3; }
done
export PATH="$NODE_BIN:$PATH"  # code-server's launcher runs `node`: it must be Node 24

T0=$SECONDS
lap() { printf '[run %3ds] %s\n' $((SECONDS - T0)) "$*"; }

TMP="$(mktemp -d "${TMPDIR:-/tmp}/llmref-vscode.XXXXXX")"
PGID=""
stop_code_server() {
    [ -n "$PGID" ] || return 0
    kill -TERM -- "-$PGID" 2>/dev/null || true
    for _ in 1 2 3 4 5 6 7 8 9 10; do
        kill -0 -- "-$PGID" 2>/dev/null || break
        sleep 0.3
    done
    kill -KILL -- "-$PGID" 2>/dev/null || true
    PGID=""
}
status=1
cleanup() {
    stop_code_server
    if [ "$status" -eq 0 ] && [ -z "${LLMREF_VSCODE_KEEP:-}" ]; then
        rm -rf "$TMP"
    else
        echo "run.sh: profile, workspace and logs kept in $TMP" >&2
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- a fresh profile: HOME, XDG dirs, code-server user data and extensions ---------------------
export HOME="$TMP/home"
export XDG_CONFIG_HOME="$HOME/.config" XDG_DATA_HOME="$HOME/.local/share"
export XDG_CACHE_HOME="$HOME/.cache" XDG_STATE_HOME="$HOME/.local/state"
USER_DATA="$TMP/user-data"
EXT_DIR="$TMP/extensions"
WORKSPACE="$TMP/workspace"
mkdir -p "$HOME" "$XDG_CONFIG_HOME" "$XDG_DATA_HOME" "$XDG_CACHE_HOME" "$XDG_STATE_HOME" \
    "$USER_DATA/User" "$EXT_DIR" "$WORKSPACE" "$ARTIFACTS"
# drive.js deletes the old screenshots of each step it runs, so a run of some steps
# (LLMREF_VSCODE_STEPS) leaves the others' screenshots in place

"$CODE_SERVER" --user-data-dir "$USER_DATA" --extensions-dir "$EXT_DIR" \
    --install-extension "$VSIX" >"$TMP/install-extension.log" 2>&1 \
    || { cat "$TMP/install-extension.log" >&2; exit 1; }
lap "installed $(basename "$VSIX"): $(ls "$EXT_DIR" | grep -v '^extensions.json$' | tr '\n' ' ')"

LLMREF_TEST_PYTHON="${LLMREF_TEST_PYTHON:-}" node -e '
const s = {
  "workbench.startupEditor": "none",
  "security.workspace.trust.enabled": false,
  "workbench.tips.enabled": false,
  "workbench.enableExperiments": false,
  "workbench.secondarySideBar.defaultVisibility": "hidden",
  "chat.disableAIFeatures": true,
  "extensions.ignoreRecommendations": true,
  "extensions.autoCheckUpdates": false,
  "extensions.autoUpdate": false,
  "telemetry.telemetryLevel": "off",
  "update.mode": "none",
  "git.enabled": false,
};
if (process.env.LLMREF_TEST_PYTHON) s["llmref.python.interpreter"] = process.env.LLMREF_TEST_PYTHON;
require("fs").writeFileSync(process.argv[1], JSON.stringify(s, null, 2));
' "$USER_DATA/User/settings.json"

cat >"$WORKSPACE/model.py" <<'EOF'
import torch
from torch import nn


class LlamaRMSNorm(nn.Module):
    def __init__(self, hidden_size, eps=1e-6):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(hidden_size))
        self.variance_epsilon = eps

EOF
cat >"$WORKSPACE/notes.md" <<'EOF'
# 学习笔记

今天复习了旋转位置编码和KV cache
EOF

# --- start code-server in its own session (so its whole tree can be stopped) -----------------
PORT="$(node -e 'const s=require("net").createServer();s.listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})')"
setsid "$CODE_SERVER" --auth none --bind-addr "127.0.0.1:$PORT" \
    --user-data-dir "$USER_DATA" --extensions-dir "$EXT_DIR" \
    --disable-telemetry --disable-update-check --disable-workspace-trust \
    --reconnection-grace-time 5 --ignore-last-opened "$WORKSPACE" \
    </dev/null >"$TMP/code-server.log" 2>&1 &
CS_PID=$!
PGID="$(ps -o pgid= -p "$CS_PID" | tr -d ' ' || true)"
[ -n "$PGID" ] || PGID="$CS_PID"
for i in $(seq 1 120); do
    curl -fsS "http://127.0.0.1:$PORT/healthz" >/dev/null 2>&1 && break
    if ! kill -0 "$CS_PID" 2>/dev/null || [ "$i" -eq 120 ]; then
        echo "run.sh: code-server did not come up:" >&2
        cat "$TMP/code-server.log" >&2
        exit 1
    fi
    sleep 0.25
done
lap "code-server up on 127.0.0.1:$PORT (pgid $PGID)"

# --- drive it ----------------------------------------------------------------------------------
set +e
NODE_PATH="$TOOLS/playwright/node_modules" PORT="$PORT" WORKSPACE="$WORKSPACE" \
    ARTIFACTS="$ARTIFACTS" CS_USER_DATA="$USER_DATA" CHROME_HOME="$TMP/chromium" \
    node "$HERE/drive.js"
status=$?
set -e
lap "drive.js exited $status; screenshots in $ARTIFACTS"
exit "$status"
