#!/usr/bin/env bash
# CI: the README's launch line, run as written, in a fresh venv (its install alone, no test packages):
# the wheel leaves `app` out, the studio renders one clip through its own code (--smoke), serves its
# page on the port Gradio's variable names, and `phenaki generate` writes a clip from the same venv.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${LAUNCH_VENV:-/tmp/launch-venv}
WORK=$(mktemp -d /tmp/launch-line.XXXXXX)
SERVER_PID=
cleanup() { [ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null; rm -rf "$WORK"; }
trap cleanup EXIT

# The line under "# Launch the studio" in the README's first block, `.venv` moved aside so it is fresh.
LINE=$(grep -A1 -m1 '^# Launch the studio' README.md | tail -n1)
case "$LINE" in
  *" && python app.py") ;;
  *) echo "launch-line: the README's launch line should end with '&& python app.py'; got: $LINE" >&2; exit 1 ;;
esac
INSTALL=${LINE% && python app.py}
INSTALL=${INSTALL//.venv/$VENV}
rm -rf "$VENV"
echo "launch-line: $INSTALL"
if ! bash -c "set -e; $INSTALL" >"$WORK/install.log" 2>&1; then
  tail -n 40 "$WORK/install.log" >&2; echo "launch-line: the install failed" >&2; exit 1
fi
. "$VENV/bin/activate"

# setuptools builds in ./build: leave the tree as it was found
[ -e build ] && KEEP_BUILD=1 || KEEP_BUILD=
pip wheel -q --no-deps -w "$WORK/wheel" .
[ -n "$KEEP_BUILD" ] || rm -rf build
if python -m zipfile -l "$WORK"/wheel/*.whl | grep -qE '^app/'; then
  echo "launch-line: the wheel installs a top-level package named app" >&2; exit 1
fi

python app.py --smoke --work-dir "$WORK/studio" --projects-dir "$WORK/projects"

PORT=$(python -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
GRADIO_SERVER_PORT=$PORT python app.py --work-dir "$WORK/studio" --projects-dir "$WORK/projects" >"$WORK/server.log" 2>&1 &
SERVER_PID=$!
if ! python - "$PORT" "$SERVER_PID" <<'PY'
import os, sys, time, urllib.request
port, pid = sys.argv[1], int(sys.argv[2])
deadline = time.monotonic() + 180
while time.monotonic() < deadline:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        sys.exit("launch-line: the studio exited before serving its page")
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as r:
            page = r.read().decode()
        if r.status == 200 and "gradio" in page.lower():
            print(f"launch-line: the studio serves its page on port {port}")
            sys.exit(0)
    except OSError:
        pass
    time.sleep(1)
sys.exit("launch-line: the studio did not serve its page within 180 s")
PY
then
  tail -n 40 "$WORK/server.log" >&2; exit 1
fi
kill "$SERVER_PID"; wait "$SERVER_PID" 2>/dev/null || true; SERVER_PID=

phenaki generate --prompt "a red circle moves right" --out "$WORK/x.mp4"
test -s "$WORK/x.mp4" || { echo "launch-line: phenaki generate wrote no clip" >&2; exit 1; }
echo "launch-line: passed"
