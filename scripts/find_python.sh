#!/usr/bin/env bash
# Prints the path of a Python 3.10 interpreter (Rasa 3.6 supports 3.8-3.10 only), or explains what to install.
set -u
for cand in "${PYTHON:-}" python3.10; do
  [ -n "$cand" ] || continue
  if command -v "$cand" >/dev/null 2>&1 && "$cand" -c 'import sys; assert sys.version_info[:2]==(3,10)' 2>/dev/null; then
    command -v "$cand"; exit 0
  fi
done
# pyenv keeps versions under its root; its shim refuses until a version is selected, so look directly.
for root in "${PYENV_ROOT:-}" "$HOME/.pyenv" /root/.pyenv /opt/pyenv; do
  [ -n "$root" ] || continue
  for p in "$root"/versions/3.10.*/bin/python3.10; do
    [ -x "$p" ] && { echo "$p"; exit 0; }
  done
done
for p in /usr/bin/python3.10 /usr/local/bin/python3.10; do
  [ -x "$p" ] && { echo "$p"; exit 0; }
done
echo "error: Rasa 3.6 needs Python 3.10 and none was found." >&2
echo "  Install it (e.g. 'pyenv install 3.10.13', or your distribution's python3.10 package)," >&2
echo "  or point PYTHON at it: PYTHON=/path/to/python3.10 make run" >&2
exit 1
