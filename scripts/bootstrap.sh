#!/usr/bin/env bash
# Installs what the portal needs and is missing: Debian packages, the virtualenv,
# compiled translations. Safe to run again; does nothing that is already done.
# Usage: scripts/bootstrap.sh run|test
set -euo pipefail
cd "$(dirname "$0")/.."
purpose="${1:-run}"

packages=(redis-server)
if [ "$purpose" = test ]; then
  # Fonts too: with --no-install-recommends Chromium comes without any, and screenshots show boxes.
  packages+=(chromium fonts-liberation postgresql)
fi

binary_for() {
  case "$1" in
    redis-server) echo /usr/bin/redis-server ;;
    chromium) echo /usr/bin/chromium ;;
    fonts-liberation) ls /usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf 2>/dev/null || true ;;
    postgresql) ls /usr/lib/postgresql/*/bin/initdb 2>/dev/null | head -n1 || true ;;
  esac
}

missing=()
for package in "${packages[@]}"; do
  binary="$(binary_for "$package")"
  if [ -z "$binary" ] || [ ! -e "$binary" ]; then
    missing+=("$package")
  fi
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "==> Installing Debian packages: ${missing[*]}"
  sudo_cmd=()
  [ "$(id -u)" -ne 0 ] && sudo_cmd=(sudo)
  export DEBIAN_FRONTEND=noninteractive
  "${sudo_cmd[@]}" apt-get update -qq
  "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

python="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  echo "==> Creating the virtualenv (.venv)"
  "$python" -m venv .venv
fi
stamp=.venv/.requirements.sha256
wanted="$(sha256sum requirements.txt | cut -d' ' -f1)"
if [ "$(cat "$stamp" 2>/dev/null || true)" != "$wanted" ]; then
  echo "==> Installing Python packages (requirements.txt)"
  .venv/bin/python -m pip install -q --disable-pip-version-check -r requirements.txt
  echo "$wanted" > "$stamp"
fi

output="$(.venv/bin/pybabel compile -d translations 2>&1)" || { echo "$output"; exit 1; }
