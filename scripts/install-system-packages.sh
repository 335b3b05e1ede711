#!/usr/bin/env bash
# Debian packages the test suite uses as real parts: the Python docs as a static website to
# crawl (python3-doc), a manual-style corpus for answer dev sets (debian-handbook), headless
# Chromium to render the insights page, a PostgreSQL server for shared state, and the git
# documentation as HTML (git-doc: bench_retrieval's user-style corpus) and the Debian FAQ
# (debian-faq: a bench_answers yes/no set). Called by
# `make test` (so CI installs them as the README's test command does). Installs only what is
# missing, only as root on a Debian-like box; elsewhere it says what it skipped and the tests
# that need a package skip with that reason.
set -uo pipefail
PACKAGES=(python3-doc debian-handbook chromium postgresql git-doc debian-faq)
missing=()
for pkg in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" != "0" ] || ! command -v apt-get >/dev/null; then
  echo "not installing ${missing[*]} (needs root and apt-get); tests that use them will skip" >&2
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null 2>&1 || true
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null \
  || echo "apt-get could not install ${missing[*]}; tests that use them will skip" >&2
exit 0
