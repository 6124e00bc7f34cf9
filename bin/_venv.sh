# Sourced by the scripts in bin/: finds Python 3.12, makes .venv, installs pinned packages.
# Installing is skipped when the requirement files have not changed since the last install.

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VENV=${VENV:-$ROOT/.venv}

find_python() {
    local candidate
    for candidate in "${PYTHON:-}" python3.12 \
        "$(pyenv root 2>/dev/null)"/versions/3.12*/bin/python3.12 \
        /usr/local/bin/python3.12 /usr/bin/python3.12; do
        if [ -n "$candidate" ] && "$candidate" -c 'import sys; assert sys.version_info[:2] == (3, 12)' 2>/dev/null; then
            echo "$candidate"
            return 0
        fi
    done
    echo "error: Python 3.12 not found; install it or set PYTHON=/path/to/python3.12" >&2
    return 1
}

ensure_venv() {
    local requirements=$1 python stamp
    stamp="$VENV/.installed-$(cat "$ROOT"/requirements*.txt "$ROOT/constraints.txt" | sha256sum | cut -c1-16)"
    if [ ! -x "$VENV/bin/python" ]; then
        python=$(find_python) || return 1
        "$python" -m venv "$VENV"
    fi
    if [ ! -f "$stamp" ]; then
        echo "Installing $requirements into $VENV ..." >&2
        "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check \
            -r "$ROOT/$requirements" -c "$ROOT/constraints.txt"
        rm -f "$VENV"/.installed-*
        touch "$stamp"
    fi
}
