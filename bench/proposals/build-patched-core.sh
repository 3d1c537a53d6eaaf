#!/bin/sh
# Builds @truss/core as committed (HEAD) plus the given patches into
# bench/.patched/<name>/dist/index.js, so the bench can measure a proposed
# change without touching packages/core:
#
#   sh bench/proposals/build-patched-core.sh memory bench/proposals/core-release-request-and-timers.patch
#   TRUSS_CORE=$PWD/bench/.patched/memory/dist/index.js pnpm --filter ./bench run bench -- --only memory
#
# With no patch it builds HEAD as is, the fair "before" for the same bundling.
set -e
name=$1
shift
root=$(git rev-parse --show-toplevel)
dir="$root/bench/.patched/$name"
rm -rf "$dir"
mkdir -p "$dir"
git -C "$root" archive HEAD packages/core/src | tar -x -C "$dir"
# patch(1), not git apply: inside the work tree, git apply silently skips paths outside the current directory.
for patch in "$@"; do patch -p1 --forward --quiet -d "$dir" < "$patch"; done
# The bundle resolves socket.io & co. through core's own node_modules.
ln -sfn "$root/packages/core/node_modules" "$dir/node_modules"
echo '{"type":"module"}' > "$dir/package.json"
"$root/node_modules/.bin/esbuild" "$dir/packages/core/src/index.ts" --bundle --platform=node --format=esm \
  --packages=external --outfile="$dir/dist/index.js" --log-level=warning
echo "$dir/dist/index.js"
