#!/usr/bin/env bash
# Create or refresh the project's virtual environment in .venv (idempotent; reinstalls when pyproject.toml changes).
# Usage: source scripts/bootstrap.sh   (activates .venv)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${PRELABEL_VENV:-$root/.venv}"
python="${PYTHON:-python3}"
if [ ! -x "$venv/bin/python" ]; then
  echo "creating virtual environment in $venv" >&2
  "$python" -m venv "$venv"
fi
stamp="$venv/.prelabel-installed"
want="$(sha256sum "$root/pyproject.toml" | cut -d' ' -f1)"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  echo "installing prelabel and its dependencies into $venv" >&2
  # PyTorch's wheels alone take several GB; say so plainly instead of failing half-way through an install.
  need_kb=$((8 * 1024 * 1024))
  free_kb="$(df -Pk "$venv" 2>/dev/null | awk 'NR == 2 {print $4}' || true)"
  if [ -n "$free_kb" ] && [ "$free_kb" -lt "$need_kb" ]; then
    echo "warning: $((free_kb / 1024)) MiB free where $venv lives; installing needs about 8 GiB" >&2
  fi
  "$venv/bin/python" -m pip install --quiet --upgrade pip
  "$venv/bin/python" -m pip install --quiet -e "$root[dev]"
  echo "$want" > "$stamp"
fi
# shellcheck disable=SC1091
source "$venv/bin/activate"
set +euo pipefail
