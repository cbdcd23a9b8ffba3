#!/usr/bin/env bash
# Installs what gridsvc needs and is missing on a Debian 12 machine; safe to run again.
#
#   scripts/setup.sh python    python3 with venv (apt python3-venv when missing)
#   scripts/setup.sh postgis   a reachable PostGIS: the given DATABASE_URL / GRIDSVC_DATABASE_URL,
#                              else the local PostgreSQL (installed with apt when missing, started
#                              when stopped, PostGIS added when missing). Writes .gridsvc.env
#                              when the database needs a URL other than the default.
#   scripts/setup.sh browser   Debian's chromium (+ CJK fonts) for browser tests and screenshots
#   scripts/setup.sh node      node and npm, for the map assets taken from the npm registry
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '[setup] %s\n' "$*" >&2; }

APT_UPDATED=""
apt_install() {
  if [ "$(id -u)" != 0 ]; then
    log "missing Debian packages: $*; run as root or install them: apt-get install $*"
    exit 1
  fi
  if [ -z "$APT_UPDATED" ]; then
    log "apt-get update"
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    APT_UPDATED=1
  fi
  log "apt-get install $*"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

have_pkg() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }

setup_python() {
  local py="${PYTHON:-python3.11}"
  command -v "$py" >/dev/null || py=python3
  command -v "$py" >/dev/null || apt_install python3 python3-venv
  if ! "$py" -c 'import ensurepip, venv' 2>/dev/null; then
    apt_install python3-venv
  fi
  "$py" -c 'import sys; assert sys.version_info >= (3, 11), sys.version' \
    || { log "gridsvc needs Python 3.11 or newer"; exit 1; }
}

pg_version() { ls /usr/lib/postgresql 2>/dev/null | sort -V | tail -n 1; }

start_cluster() {
  local ver="$1"
  if ! pg_lsclusters -h 2>/dev/null | grep -q .; then
    log "creating PostgreSQL $ver cluster main"
    pg_createcluster "$ver" main >/dev/null
  fi
  local cluster
  cluster=$(pg_lsclusters -h | awk -v v="$ver" '$1 == v {print $2; exit}')
  cluster="${cluster:-main}"
  if ! pg_lsclusters -h | awk -v v="$ver" -v c="$cluster" '$1 == v && $2 == c' | grep -q online; then
    log "starting PostgreSQL $ver/$cluster"
    pg_ctlcluster --skip-systemctl-redirect "$ver" "$cluster" start 2>/dev/null \
      || pg_ctlcluster "$ver" "$cluster" start
  fi
  for _ in $(seq 1 30); do pg_isready -q -h 127.0.0.1 -p 5432 && return 0; sleep 1; done
  pg_isready -q && return 0
  log "PostgreSQL did not become ready"; exit 1
}

setup_postgis() {
  if [ -n "${GRIDSVC_DATABASE_URL:-${DATABASE_URL:-}}" ]; then
    log "using the database given in GRIDSVC_DATABASE_URL / DATABASE_URL"
    rm -f .gridsvc.env
    return 0
  fi
  if ! command -v pg_lsclusters >/dev/null || [ -z "$(pg_version)" ]; then
    apt_install postgresql postgresql-contrib
  fi
  local ver
  ver=$(pg_version)
  # The extension needs both its control file (the -scripts package) and its library.
  if [ ! -f "/usr/share/postgresql/$ver/extension/postgis.control" ] \
     || ! ls "/usr/lib/postgresql/$ver/lib/"postgis-3*.so >/dev/null 2>&1; then
    apt_install "postgresql-$ver-postgis-3" "postgresql-$ver-postgis-3-scripts"
  fi
  start_cluster "$ver"
  if psql -h 127.0.0.1 -U postgres -d postgres -Atqc 'select 1' >/dev/null 2>&1 </dev/null; then
    rm -f .gridsvc.env   # the default URL (postgres@127.0.0.1, trust auth) works
    return 0
  fi
  # A fresh Debian cluster allows local socket logins by peer authentication only: give the
  # current OS user a role of the same name and connect over the socket, no password needed.
  local me
  me=$(id -un)
  if ! psql -d postgres -Atqc 'select 1' >/dev/null 2>&1 </dev/null; then
    log "creating PostgreSQL role $me (peer authentication over the local socket)"
    runuser -u postgres -- createuser --superuser "$me"
  fi
  echo "GRIDSVC_DATABASE_URL=postgresql+psycopg:///gridsvc?host=/var/run/postgresql" > .gridsvc.env
  log "database URL written to .gridsvc.env"
}

setup_browser() {
  if ! command -v chromium >/dev/null; then
    apt_install chromium fonts-noto-cjk
  elif ! have_pkg fonts-noto-cjk && [ "$(id -u)" = 0 ]; then
    apt_install fonts-noto-cjk
  fi
}

setup_node() {
  command -v npm >/dev/null || apt_install nodejs npm
}

for step in "$@"; do
  case "$step" in
    python) setup_python ;;
    postgis) setup_postgis ;;
    browser) setup_browser ;;
    node) setup_node ;;
    *) log "unknown step $step (python, postgis, browser, node)"; exit 2 ;;
  esac
done
