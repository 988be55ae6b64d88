#!/bin/sh
# Install the jco adapter's dependencies (the exact versions of package-lock.json) into
# adapters/jco/node_modules. Idempotent and quiet: nothing runs when node_modules already
# matches the lockfile. Needs node and npm (Node.js >= 20).
set -eu
cd "$(dirname "$0")"

if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  echo "adapters/jco/install.sh: node and npm are required (Node.js >= 20): install them first" >&2
  echo "  (e.g. apt-get install nodejs npm)" >&2
  exit 1
fi
major=$(node -p 'process.versions.node.split(".")[0]')
if [ "$major" -lt 20 ]; then
  echo "adapters/jco/install.sh: Node.js >= 20 is required, found $(node --version)" >&2
  exit 1
fi

stamp=node_modules/.witness-lock
if [ -f "$stamp" ] && cmp -s package-lock.json "$stamp"; then
  exit 0
fi

log=$(mktemp)
trap 'rm -f "$log"' EXIT
if ! npm ci --no-audit --no-fund --loglevel=error >"$log" 2>&1; then
  # npm ci refuses a lockfile that lacks entries for some other platform's optional binaries
  # (rolldown, componentize-qjs, jco-node-fs bindings), which is what `npm install` writes
  # when the registry it sees has no such versions. `npm install --no-save` installs the
  # same locked versions without rewriting the lockfile.
  if grep -q 'can only install packages when your package.json and package-lock.json' "$log"; then
    if ! npm install --no-save --no-audit --no-fund --loglevel=error >"$log" 2>&1; then
      cat "$log" >&2
      echo "adapters/jco/install.sh: npm install failed" >&2
      exit 1
    fi
  else
    cat "$log" >&2
    echo "adapters/jco/install.sh: npm ci failed" >&2
    exit 1
  fi
fi

want=$(node -p 'require("./package.json").dependencies["@bytecodealliance/jco"]')
have=$(node -p 'require("./node_modules/@bytecodealliance/jco/package.json").version')
if [ "$want" != "$have" ]; then
  echo "adapters/jco/install.sh: installed jco $have, package.json pins $want" >&2
  exit 1
fi
cp package-lock.json "$stamp"
