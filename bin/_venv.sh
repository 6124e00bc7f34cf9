# Sourced by the scripts in bin/: finds Python 3.12, makes .venv, installs pinned packages.
#
# The requirement files nest: requirements.txt (the runtime) < requirements-local.txt (what
# bin/serve needs: + moto's server) < requirements-dev.txt (+ tests and tools). A stamp in the
# venv records which files the last install covered and a hash of every requirement file, so
# bin/serve after bin/test installs nothing (the dev set covers the local one), bin/test after
# bin/serve adds only the test tools, and any change to a requirement file installs again.

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

# The requirement file and every file it includes with -r, one name a line.
requirement_closure() {
    local file=$1 included
    echo "$file"
    for included in $(sed -n 's/^-r[[:space:]]*//p' "$ROOT/$file"); do
        requirement_closure "$included"
    done
}

ensure_venv() {
    local requirements=$1 python stamp
    stamp="$VENV/.installed-$(cat "$ROOT"/requirements*.txt "$ROOT/constraints.txt" | sha256sum | cut -c1-16)"
    if [ ! -x "$VENV/bin/python" ]; then
        python=$(find_python) || return 1
        "$python" -m venv "$VENV"
    fi
    if ! grep -qxF "$requirements" "$stamp" 2>/dev/null; then
        echo "Installing $requirements into $VENV ..." >&2
        "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check \
            -r "$ROOT/$requirements" -c "$ROOT/constraints.txt"
        rm -f "$VENV"/.installed-*
        requirement_closure "$requirements" >"$stamp"
    fi
}
