#!/usr/bin/env bash
# Runs every test of the project. Installs what it needs first: Debian packages through apt
# (this needs root: run as root, or have sudo), PostgreSQL (started here when none is reachable)
# oathtool (the RFC 6238 cross-check) and PyPI's oath (the RFC 6287 OCRA cross-check).
#
#   scripts/test.sh            # everything
#   SKIP_LINT=1 scripts/test.sh  # without fmt/clippy
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)

log() { printf '\n== %s\n' "$*" >&2; }

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
    echo "need root (or sudo) for: $*" >&2; exit 1; fi
}

# --- system packages -----------------------------------------------------------------------
PACKAGES=(oathtool python3-venv postgresql postgresql-client ssl-cert ca-certificates pkg-config build-essential keyutils
  chromium python3-aiosmtpd fonts-noto-cjk  # customer screens: browser journey, SMTP on loopback
  libwebkit2gtk-4.1-dev libgtk-3-dev libsoup-3.0-dev librsvg2-dev libayatana-appindicator3-dev
  libssl-dev xvfb xauth webkit2gtk-driver  # the Tauri app: desktop build, Xvfb + WebKitWebDriver
  systemd prometheus python3-yaml)  # deploy/: systemd-analyze verify, promtool, the compose file
log "installing system packages: ${PACKAGES[*]}"
export DEBIAN_FRONTEND=noninteractive
if ! as_root apt-get install -y --no-install-recommends "${PACKAGES[@]}" >/tmp/otp-apt.log 2>&1; then
  as_root apt-get update >/tmp/otp-apt-update.log 2>&1
  as_root apt-get install -y --no-install-recommends "${PACKAGES[@]}" >/tmp/otp-apt.log 2>&1 \
    || { cat /tmp/otp-apt.log >&2; exit 1; }
fi
command -v oathtool >/dev/null || { echo "oathtool missing after install" >&2; exit 1; }

# --- PostgreSQL ---------------------------------------------------------------------------
PG_ADMIN_URL=${OTP_TEST_PG_URL:-postgres://otp:otp@127.0.0.1:5432/postgres}
pg_ready() { psql "$PG_ADMIN_URL" -Atqc 'select 1' >/dev/null 2>&1; }
if ! pg_ready; then
  if [ -n "${OTP_TEST_PG_URL:-}" ]; then
    echo "OTP_TEST_PG_URL=$OTP_TEST_PG_URL is not reachable" >&2; exit 1
  fi
  log "starting PostgreSQL"
  ver=$(ls /usr/lib/postgresql | sort -n | tail -1)
  if ! pg_lsclusters -h | awk '{print $1" "$2}' | grep -q "^$ver main$"; then
    as_root pg_createcluster "$ver" main >/dev/null
  fi
  as_root pg_ctlcluster "$ver" main start || true
  for _ in $(seq 1 30); do
    as_root su postgres -c "psql -Atqc 'select 1'" >/dev/null 2>&1 && break; sleep 1
  done
  as_root su postgres -c "psql -v ON_ERROR_STOP=1 -q" <<'SQL'
DO $$ BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'otp') THEN
    CREATE ROLE otp LOGIN PASSWORD 'otp' CREATEDB;
  END IF;
END $$;
SQL
  pg_ready || { echo "PostgreSQL did not come up at $PG_ADMIN_URL" >&2; exit 1; }
fi
export OTP_TEST_PG_URL=$PG_ADMIN_URL
# Every PostgreSQL test makes a database of its own, named otp_{t,e2e,load}_<unix time>_<id>,
# and drops it when it passes. Drop those a failed or killed run left behind more than 6 hours
# ago (a run going on now, here or on another machine sharing this server, keeps its own), and
# any in the older unnamed-time form.
STALE=$(( $(date +%s) - 6 * 3600 ))
for db in $(psql "$PG_ADMIN_URL" -Atqc "select datname from pg_database
    where (datname ~ '^otp_(t|e2e|load)_[0-9]+_[0-9a-f]+$' and split_part(datname, '_', 3)::bigint < $STALE)
       or datname ~ '^otp_(t|e2e)_[0-9a-f]{12}$' or datname ~ '^otp_load_[0-9]+$'"); do
  psql "$PG_ADMIN_URL" -qc "DROP DATABASE $db" >/dev/null 2>&1 || true
done

# --- deploy/: service unit, alert rules and their tests, dashboard queries, compose file -------
log "deploy/: systemd-analyze verify, promtool check/test rules, compose and Containerfile"
scripts/check-deploy.sh

# --- the app's web UI (ui/): built before cargo, which embeds ui/dist into the app --------------
node -e 'process.exit(+process.versions.node.split(".")[0] >= 20 ? 0 : 1)' 2>/dev/null \
  || { echo "Node.js 20+ with npm is needed for ui/ (the machine's nodejs package)" >&2; exit 1; }
log "ui: npm ci, vitest, build, bundle size"
(cd ui && npm ci --no-audit --no-fund >/tmp/otp-npm-ui.log 2>&1) || { cat /tmp/otp-npm-ui.log >&2; exit 1; }
(cd ui && npm test && npm run build && npm run size)
log "tauri-driver (WebDriver for the desktop app's journey)"
cargo install tauri-driver --locked --version '^2' >/tmp/otp-tauri-driver.log 2>&1 \
  || { cat /tmp/otp-tauri-driver.log >&2; exit 1; }
export TAURI_DRIVER=${CARGO_HOME:-$HOME/.cargo}/bin/tauri-driver

# --- PyPI's oath: an independent RFC 6287 (OCRA) for protocol/tests/ocra.rs ----------------
# Pinned; in a venv of its own so the system Python stays untouched. The cross-check test fails
# (never skips) without it.
OATH_VENV=${OTP_OATH_VENV:-/tmp/otp-oath-venv}
log "PyPI oath==1.4.5 in $OATH_VENV (OCRA cross-check)"
[ -x "$OATH_VENV/bin/python" ] || python3 -m venv "$OATH_VENV"
"$OATH_VENV/bin/pip" install --disable-pip-version-check -q 'oath==1.4.5' >/tmp/otp-pip-oath.log 2>&1 \
  || { cat /tmp/otp-pip-oath.log >&2; exit 1; }
export OTP_OATH_PYTHON=$OATH_VENV/bin/python
"$OTP_OATH_PYTHON" -c 'import oath' || { echo "oath missing after install" >&2; exit 1; }

# --- Rust ---------------------------------------------------------------------------------
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
if [ -z "${SKIP_LINT:-}" ]; then
  log "cargo fmt --check"
  cargo fmt --all -- --check
  log "cargo clippy"
  cargo clippy --workspace --all-targets --locked -- -D warnings
fi
log "building (once, shared target dir)"
cargo build --workspace --all-targets --locked
export OTP_BACKEND_BIN=$CARGO_TARGET_DIR/debug/otp-backend
log "npm ci (tests/browser: playwright-core drives Debian's chromium; no browser download)"
(cd tests/browser && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund >/tmp/otp-npm-browser.log 2>&1) \
  || { cat /tmp/otp-npm-browser.log >&2; exit 1; }
log "cargo test"
cargo test --workspace --locked -- --test-threads="${TEST_THREADS:-4}"
log "load tool: a short SQLite run (the instrument of the README's speed figures still runs)"
# Two concurrencies, each with a rate above zero and at most one answer that is not "ok": about
# one verification in a million rightly answers "replayed" (see the README), and a run this
# short makes about 5,000; the tool prints any such answer with its token's audit trail.
LOAD_OUT=$("$CARGO_TARGET_DIR/debug/examples/load" --db sqlite --tokens 16 --seconds 1 --concurrency 4,8)
printf '%s\n' "$LOAD_OUT"
printf '%s\n' "$LOAD_OUT" | awk '$1 == "4" || $1 == "8" { n++; if ($2 + 0 <= 0 || $6 + 0 > 1) bad = 1 }
  END { exit !(n == 2 && !bad) }' || { echo "load tool: unexpected figures" >&2; exit 1; }
log "ui: every screen in chromium with mocked IPC, both phone sizes (screenshots: ui/test-results/screens)"
(cd ui && npm run test:screens)
log "all tests passed"
