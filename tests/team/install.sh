#!/usr/bin/env bash
# Install the PostgreSQL server that tests/team starts as a throwaway cluster (initdb + pg_ctl
# in a temporary folder): Debian's `postgresql`. Idempotent and quiet; needs root (or sudo).
# The package's own cluster (15/main, a system service) is not created: nothing runs after.
set -euo pipefail

if compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null || command -v initdb >/dev/null; then
    exit 0
fi
if ! command -v apt-get >/dev/null; then
    echo "tests/team/install.sh: no apt-get; install the PostgreSQL server yourself" >&2
    exit 1
fi
sudo=()
[ "$(id -u)" -eq 0 ] || sudo=(sudo)
export DEBIAN_FRONTEND=noninteractive
# no default cluster, no service started by the package
"${sudo[@]}" mkdir -p /etc/postgresql-common
if ! grep -qs '^create_main_cluster' /etc/postgresql-common/createcluster.conf; then
    echo "create_main_cluster = false" | "${sudo[@]}" tee -a /etc/postgresql-common/createcluster.conf >/dev/null
fi
if ! apt-cache show postgresql >/dev/null 2>&1; then
    "${sudo[@]}" apt-get update -qq
fi
"${sudo[@]}" apt-get install -y -qq --no-install-recommends postgresql >/dev/null
