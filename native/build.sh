#!/bin/sh
# Build the NIF (release profile) and install it as priv/native/libseccomp_nif.so.
# cargo decides whether anything changed; the copy is atomic so a running VM
# that has the old library mapped is never handed a half-written file.
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
cargo build --quiet --release --manifest-path "$root/Cargo.toml" -p seccomp_nif
target=${CARGO_TARGET_DIR:-$root/target}
case "$(uname -s)" in
  Darwin) built="$target/release/libseccomp_nif.dylib" ;;
  *) built="$target/release/libseccomp_nif.so" ;;
esac
dest="$root/priv/native/libseccomp_nif.so"
mkdir -p "$root/priv/native"
if ! cmp -s "$built" "$dest"; then
  cp "$built" "$dest.tmp.$$"
  mv -f "$dest.tmp.$$" "$dest"
fi
