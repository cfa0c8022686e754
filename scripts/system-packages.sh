#!/usr/bin/env bash
# Installs and starts what the tests need beyond Python: PostGIS on the local PostgreSQL 15,
# GDAL's command-line clients (a real OGC API and MVT client), Chromium (browser tests), wrk (load),
# nginx-light (the static-file ceiling of `make bench`, which runs its own nginx on a free port),
# QGIS's Python bindings without the desktop (a test opens our layer files in QGIS itself), and
# Redis (the shared tile cache: its tests use the server on 127.0.0.1:6379 and start their own).
# Idempotent: installs only what is missing. Needs root (or sudo) for apt-get.
set -euo pipefail
packages=(postgresql-15-postgis-3 gdal-bin chromium wrk nginx-light redis-server)
bare=(python3-qgis qgis-providers)  # without their recommends: about 45 s rather than the whole desktop
missing=() missing_bare=()
for p in "${packages[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
for p in "${bare[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing_bare+=("$p"); done
if ((${#missing[@]} + ${#missing_bare[@]})); then
  sudo=""; [ "$(id -u)" = 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  install=($sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq)
  if ((${#missing[@]})); then "${install[@]}" "${missing[@]}" >/dev/null; fi
  if ((${#missing_bare[@]})); then "${install[@]}" --no-install-recommends "${missing_bare[@]}" >/dev/null; fi
fi
# PostgreSQL runs on 127.0.0.1:5432 on these machines; start it if it has stopped.
if ! pg_isready -q -h 127.0.0.1 -p 5432; then
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -1)" main start
  for _ in $(seq 30); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 1; done
fi
psql -q -h 127.0.0.1 -U postgres -d test -c 'CREATE EXTENSION IF NOT EXISTS postgis' >/dev/null
# Redis runs on 127.0.0.1:6379 on these machines; start it if it has stopped (no persistence: a cache).
if ! redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then
  redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no >/dev/null
  for _ in $(seq 30); do redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1 && break; sleep 0.2; done
fi
