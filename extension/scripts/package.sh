#!/usr/bin/env bash
# Build the llmref VSIXes: type-check, lint, bundle the TypeScript with esbuild, vendor the
# llmref Python package and its dependencies into bundled/libs, package with vsce.
#
#   bash extension/scripts/package.sh                       # every target below
#   bash extension/scripts/package.sh linux-x64 universal   # only these
#
# Platform VSIXes, extension/llmref-<target>.vsix (linux-x64, linux-arm64, darwin-x64,
# darwin-arm64, win32-x64): pure-Python dependencies plus that platform's rjieba (the fast
# Chinese segmenter, an abi3 wheel: one build for every CPython >= 3.9) and PyYAML's C loader
# for CPython 3.10-3.14; no jieba.
# The universal VSIX, extension/llmref.vsix, for every other platform: pure Python only, with
# jieba (loads in ~1.3 s, once) instead of rjieba and PyYAML's pure loader (~0.4 s more to
# load the glossary). The marketplace and `code --install-extension` take any of them; the
# marketplace hands each platform its own when a platform VSIX exists.
#
# Needs Node 18+ and Python 3.10+ (PYTHON=...), and the npm registry and PyPI (or a mirror).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(cd .. && pwd)
python=${PYTHON:-python3}

all_targets=(linux-x64 linux-arm64 darwin-x64 darwin-arm64 win32-x64 universal)
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=("${all_targets[@]}")
for t in "${targets[@]}"; do
    case " ${all_targets[*]} " in *" $t "*) ;; *)
        echo "package.sh: unknown target $t (targets: ${all_targets[*]})" >&2
        exit 2
        ;;
    esac
done

# the pip platform tag of each target's wheels
wheel_platform() {
    case "$1" in
    linux-x64) echo manylinux2014_x86_64 ;;
    linux-arm64) echo manylinux2014_aarch64 ;;
    darwin-x64) echo macosx_10_12_x86_64 ;;
    darwin-arm64) echo macosx_11_0_arm64 ;;
    win32-x64) echo win_amd64 ;;
    esac
}
pythons=(3.10 3.11 3.12 3.13 3.14) # PyYAML's C loader is built per CPython version

T0=$SECONDS
lap() { printf '[package %3ds] %s\n' $((SECONDS - T0)) "$*"; }

# --- the TypeScript ----------------------------------------------------------------------------
# npm: dependencies' install scripts are denied in package.json (allowScripts): esbuild runs
# from its platform package without its postinstall, and vsce signs nothing here
[ -d node_modules ] || npm ci --no-audit --no-fund --loglevel=error
npx tsc --noEmit -p .
npx eslint src
npm run -s build -- --log-level=warning
lap "extension built: dist/extension.js"

# --- the Python, staged once ----------------------------------------------------------------------
stage=$(mktemp -d "${TMPDIR:-/tmp}/llmref-package.XXXXXX")
trap 'rm -rf "$stage"' EXIT
pip_target() { # pip_target DIR ARGS...: install into a new directory (no "already exists")
    local dir=$1
    shift
    "$python" -m pip install --quiet --no-compile --no-deps --target "$dir" "$@"
}
# llmref itself (with its bundled corpus and glossary) and its pure-Python runtime dependencies
# (cattrs/attrs for lsprotocol; exceptiongroup and typing_extensions for Python 3.10;
# cached-property for whoosh; PyYAML's pure part, its C loader is added per platform)
pip_target "$stage/common" "$root" \
    "pygls>=2,<3" "lsprotocol>=2025.0.0" cattrs attrs exceptiongroup typing_extensions \
    "whoosh-reloaded==2.7.5" cached-property pyyaml markdown-it-py mdurl platformdirs pathspec
rm -rf "$stage/common/bin" "$stage"/common/yaml/_yaml.*
yaml_version=$("$python" -c 'import sys, glob, re; print(re.search(r"yaml-([^-]+)\.dist-info", glob.glob(sys.argv[1] + "/[Pp]y[Yy][Aa][Mm][Ll]-*.dist-info")[0]).group(1))' "$stage/common")
lap "staged llmref and its pure-Python dependencies (PyYAML $yaml_version)"

package() { # package TARGET: bundled/libs from the stage, then vsce
    local target=$1 out
    rm -rf bundled
    mkdir -p bundled
    cp -r "$stage/common" bundled/libs
    if [ "$target" = universal ]; then
        pip_target "$stage/jieba" jieba
        cp -r "$stage"/jieba/. bundled/libs/
        out=llmref.vsix
    else
        local platform
        platform=$(wheel_platform "$target")
        pip_target "$stage/rjieba-$target" --only-binary=:all: --platform "$platform" \
            --python-version 3.10 --implementation cp --abi abi3 rjieba
        cp -r "$stage/rjieba-$target"/. bundled/libs/
        local v found=()
        for v in "${pythons[@]}"; do
            # one CPython's C loader; skipped where PyPI has no such wheel (the pure loader runs)
            if pip_target "$stage/yaml-$target-$v" --only-binary=:all: --platform "$platform" \
                --python-version "$v" --implementation cp "pyyaml==$yaml_version" 2>/dev/null; then
                cp "$stage/yaml-$target-$v"/yaml/_yaml.* bundled/libs/yaml/
                found+=("$v")
            fi
        done
        # the Linux builds carry debug info (~2.7 MB each; ~0.4 MB without): llvm-strip takes
        # every architecture, GNU strip the machine's own
        case "$target" in linux-*)
            $(command -v llvm-strip || echo strip) --strip-debug bundled/libs/yaml/_yaml.* 2>/dev/null || true
            ;;
        esac
        lap "$target: rjieba $(ls -d bundled/libs/rjieba-*.dist-info | sed 's/.*rjieba-\(.*\)\.dist-info/\1/'), PyYAML C loader for CPython ${found[*]:-(none)}"
        out=llmref-$target.vsix
    fi
    rm -rf bundled/libs/bin bundled/libs/*.dist-info/RECORD
    find bundled -name __pycache__ -prune -exec rm -rf {} +
    local target_flag=()
    [ "$target" = universal ] || target_flag=(--target "$target")
    npx vsce package --no-dependencies --allow-missing-repository "${target_flag[@]}" -o "$out" >"$stage/vsce.log" 2>&1 \
        || { cat "$stage/vsce.log" >&2; exit 1; }
    grep -i "warn" "$stage/vsce.log" >&2 || true
    lap "$target: extension/$out, $(du -h "$out" | cut -f1) ($(du -sh bundled/libs | cut -f1) of Python unpacked)"
}

for t in "${targets[@]}"; do
    package "$t"
done
