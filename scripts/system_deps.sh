#!/usr/bin/env bash
# System packages the test suite runs against: PostgreSQL's server binaries (tests/test_postgres.py,
# tests/test_overlap.py), Chromium (the browser tests; Playwright drives it through executable_path, since it
# cannot download its own browser here) and tmux (tests/test_terminal.py: the screen in a real terminal). Installed with apt-get where they are missing and we may install (root, or sudo without a
# password); otherwise a note, and those tests say why they skip.
set -u
missing=0
have_postgres() {
  ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null 2>&1 ||
    { [ -n "${RATER_PG_BIN:-}" ] && [ -x "$RATER_PG_BIN/initdb" ]; }
}
apt_install() {
  local sudo=""
  if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then sudo="sudo -n"; else return 1; fi
  fi
  command -v apt-get >/dev/null 2>&1 || return 1
  $sudo apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq \
    --no-install-recommends "$@" >/dev/null
}
if ! have_postgres; then
  echo "Installing PostgreSQL's server (Debian package postgresql) for the tests..."
  apt_install postgresql || { echo "note: could not install PostgreSQL; its tests will skip and say why" >&2; missing=1; }
fi
if ! command -v chromium >/dev/null 2>&1 && ! command -v chromium-browser >/dev/null 2>&1 &&
   [ -z "${RATER_CHROMIUM:-}" ]; then
  echo "Installing Chromium (Debian package chromium) for the browser tests..."
  apt_install chromium || { echo "note: could not install Chromium; the browser tests will skip and say why" >&2; missing=1; }
fi
if ! command -v tmux >/dev/null 2>&1; then
  echo "Installing tmux (Debian package tmux) for the terminal tests..."
  apt_install tmux || { echo "note: could not install tmux; the terminal tests will skip and say why" >&2; missing=1; }
fi
exit "$missing"  # 1: the Makefile runs the tests anyway and tries again next time
