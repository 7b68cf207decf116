#!/usr/bin/env bash
# Build extension/llmref.vsix: type-check, lint, bundle the TypeScript with esbuild, vendor the
# llmref Python package and its pure-Python dependencies into bundled/libs, package with vsce.
#
# One VSIX for every platform: everything vendored is pure Python except rjieba (the fast
# Chinese segmenter, an abi3 wheel for Linux x86_64) and PyYAML's optional C speedups. Where
# those do not load, llmref falls back to jieba (pure Python, vendored) and PyYAML's pure
# loader, so the same VSIX works with any Python >= 3.10 on any OS.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(cd .. && pwd)
python=${PYTHON:-python3}

[ -d node_modules ] || npm ci --no-audit --no-fund
npx tsc --noEmit -p .
npx eslint src
npm run -s build

rm -rf bundled
mkdir -p bundled/libs
# the llmref package itself (with its bundled corpus and glossary), without its dependencies
"$python" -m pip install --quiet --no-compile --no-deps --target bundled/libs "$root"
# its runtime dependencies, pure Python (cattrs/attrs for lsprotocol; exceptiongroup and
# typing_extensions for Python 3.10; cached-property for whoosh)
"$python" -m pip install --quiet --no-compile --no-deps --target bundled/libs \
    "pygls>=2,<3" "lsprotocol>=2025.0.0" cattrs attrs exceptiongroup typing_extensions \
    "whoosh-reloaded==2.7.5" cached-property pyyaml markdown-it-py mdurl platformdirs jieba
# the fast segmenter where it runs (Linux x86_64 abi3 wheel); elsewhere jieba takes over
"$python" -m pip install --quiet --no-compile --no-deps --target bundled/libs \
    --only-binary=:all: --platform manylinux2014_x86_64 --python-version 3.10 rjieba \
    || echo "package.sh: rjieba not vendored; the VSIX will use jieba" >&2
rm -rf bundled/libs/bin bundled/libs/*.dist-info/RECORD
find bundled -name __pycache__ -prune -exec rm -rf {} +

npx vsce package --no-dependencies --allow-missing-repository -o llmref.vsix
ls -la llmref.vsix
