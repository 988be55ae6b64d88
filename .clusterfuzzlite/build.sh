#!/bin/bash -eu
# Builds every fuzz target of fuzz/ with `cargo fuzz build -O` and puts into $OUT, for each
# target: the binary, `<target>.dict` (the encodings' magic values) and `<target>.options`
# (which names the dictionary, then the target's own options from fuzz/options/); and the seed corpora the repository has
# (`<target>_seed_corpus.zip`). This follows OSS-Fuzz's and ClusterFuzzLite's conventions: their
# base-builder-rust image runs it with $SRC, $OUT and $SANITIZER set and the repository as the
# working directory. CI runs it outside Docker with OUT a temporary folder
# and CARGO_FUZZ_FLAGS="-s none" (no sanitizer, so a stable toolchain builds it).

if [ -f fuzz/Cargo.toml ]; then
  root="$PWD"
else
  root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
fi
: "${OUT:?set OUT to the folder the fuzz targets go to}"
mkdir -p "$OUT"
cd "$root/fuzz"

# shellcheck disable=SC2086 # the flags are words on purpose
cargo fuzz build -O ${CARGO_FUZZ_FLAGS:-}

triple="$(rustc -vV | sed -n 's/^host: //p')"
bin_dir="${CARGO_TARGET_DIR:-$root/fuzz/target}/$triple/release"
for target in $(cargo fuzz list); do
  cp "$bin_dir/$target" "$OUT/$target"
  cp "$root/fuzz/witness.dict" "$OUT/$target.dict"
  # fuzz/options/TARGET.options: the target's own libFuzzer options (cargo xtask fuzz-bench
  # runs with them too), after the dictionary.
  printf '[libfuzzer]\ndict = %s.dict\n' "$target" > "$OUT/$target.options"
  if [ -f "$root/fuzz/options/$target.options" ]; then
    grep -v '^\[libfuzzer\]' "$root/fuzz/options/$target.options" >> "$OUT/$target.options"
  fi
done

# Seed corpora, where the repository's files are inputs of a target as they are: the
# hand-written suites for `suite_file`, the expectations files for `expectations_file`, the
# committed seeds of fuzz/seeds/TARGET (harness/tests/fuzz_seeds.rs keeps them current) and the
# inputs of fixed findings, fuzz/regressions/TARGET; and
# for `wit_text` the world of every suite file (its `world` field).
seed_corpus() {
  local target="$1"
  shift
  python3 - "$OUT/${target}_seed_corpus.zip" "$@" <<'PY'
import os, sys, zipfile
with zipfile.ZipFile(sys.argv[1], "w") as z:
    for f in sys.argv[2:]:
        z.write(f, os.path.basename(f))
PY
}
seed_corpus suite_file "$root"/suites/conformance/*.toml
seed_corpus expectations_file "$root"/expectations/*.toml
for seeds in "$root"/fuzz/seeds/*/; do
  seed_corpus "$(basename "$seeds")" "$seeds"*
done
# The inputs of fixed findings, with the seeds of their target if it has any.
for regressions in "$root"/fuzz/regressions/*/; do
  target="$(basename "$regressions")"
  seed_corpus "$target" "$regressions"* $(ls -d "$root/fuzz/seeds/$target/"* 2>/dev/null)
done
python3 - "$OUT/wit_text_seed_corpus.zip" "$root"/suites/conformance/*.toml <<'PY'
import os, sys, tomllib, zipfile
with zipfile.ZipFile(sys.argv[1], "w") as z:
    for f in sys.argv[2:]:
        with open(f, "rb") as suite:
            z.writestr(os.path.basename(f) + ".wit", tomllib.load(suite)["world"])
PY
ls "$OUT"
