#!/usr/bin/env bash
# Install and start what the integration tests need: Docker Engine, HAProxy,
# static busybox, wrk, pebble (ACME test CA; Debian packages), dynalite (npm, pinned in
# tests/dynalite/package-lock.json) and a running dockerd.
#
# Idempotent and quick when everything is already in place: apt is skipped
# when the tools are installed, npm ci when the lock file is unchanged, and
# dockerd is started only when `docker info` fails.
set -euo pipefail

# Root shells in CI may lack the sbin directories where dockerd lives.
export PATH="${PATH:+$PATH:}/usr/local/sbin:/usr/sbin:/sbin"
repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
dynalite_dir="$repo_root/tests/dynalite"
dockerd_log=/tmp/cosmos-dockerd.log
dockerd_wait_seconds="${COSMOS_DOCKERD_WAIT:-30}"

log() { printf '[install-test-deps] %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

have_static_busybox() {
    [ -x /bin/busybox ] && [ "$(dpkg-query -W -f='${Status}' busybox-static 2>/dev/null)" = "install ok installed" ]
}

install_packages() {
    if command -v haproxy >/dev/null && command -v dockerd >/dev/null \
        && command -v docker >/dev/null && command -v wrk >/dev/null && command -v curl >/dev/null \
        && have_static_busybox \
        && command -v pebble >/dev/null && command -v pebble-challtestsrv >/dev/null; then
        log "apt: haproxy, docker.io, busybox-static, wrk, curl and pebble already installed"
        return
    fi
    log "apt: installing docker.io haproxy busybox-static wrk curl pebble"
    apt-get update
    DEBIAN_FRONTEND=noninteractive apt-get install -y docker.io haproxy busybox-static wrk curl pebble
}

install_dynalite() {
    command -v npm >/dev/null || die "npm not found: install Node.js >= 20 (dynalite 4 needs it)"
    local stamp="$dynalite_dir/node_modules/.cosmos-lock.sha256"
    local want
    want="$(sha256sum "$dynalite_dir/package-lock.json" | cut -d' ' -f1)"
    if [ -x "$dynalite_dir/node_modules/.bin/dynalite" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then
        log "npm: dynalite already installed (lock unchanged)"
        return
    fi
    log "npm: installing dynalite from the lock file"
    (cd "$dynalite_dir" && npm ci --no-audit --no-fund)
    printf '%s\n' "$want" >"$stamp"
}

start_dockerd() {
    if docker info >/dev/null 2>&1; then
        log "docker: engine already running"
        return
    fi
    log "docker: starting dockerd (log: $dockerd_log)"
    nohup dockerd --iptables=false >"$dockerd_log" 2>&1 &
    local pid=$! deadline=$((SECONDS + dockerd_wait_seconds)) problem=""
    until docker info >/dev/null 2>&1; do
        if ! kill -0 "$pid" 2>/dev/null; then
            problem="dockerd exited before the engine became reachable"
        elif [ "$SECONDS" -ge "$deadline" ]; then
            problem="docker engine not reachable after ${dockerd_wait_seconds}s"
        fi
        if [ -n "$problem" ]; then
            log "dockerd log tail ($dockerd_log):"
            tail -n 40 "$dockerd_log" >&2 || true
            die "$problem"
        fi
        sleep 0.5
    done
    log "docker: engine is up"
}

install_packages
install_dynalite
start_dockerd
