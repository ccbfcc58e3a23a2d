#!/usr/bin/env bash
# CI stage: proves the README's first command on a bare Debian 12. Makes a minimal bookworm root
# (mmdebstrap --variant=minbase: essential packages and apt, nothing else) outside the source tree,
# from the Debian mirror this machine's apt uses; copies the checkout's tracked files and ../shared
# into it side by side; then, chrooted as root with a clean environment, runs `bash scripts/setup.sh`,
# `sdc inspect` and `sdc generate` on the tiny fixture model. A package that
# scripts/install-deps.sh forgets makes setup.sh, and so this script, fail.
#   scripts/check-bare-install.sh [--keep]     --keep: leave the root in place and print its path
# Needs root (re-runs itself with sudo otherwise) and the mirror over the network. Environment:
#   SDC_BARE_SOURCES  apt sources for the root, ';'-separated "deb URI SUITE main" lines,
#                     instead of the bookworm entries of this machine's apt
#   TMPDIR            where the root is made (about 1.3 GB while it runs; removed at the end)
#   SDC_BARE_CCACHE   a compiler-cache folder (.ci/run: the one test.sh uses) mounted as the root's
#                     ~/.cache/ccache: setup.sh installs ccache and compiles through it, so the
#                     Release build that follows reuses what the root compiled. Every header and
#                     library still has to be in the root: ccache compiles what it has not seen
#                     with these exact inputs, and the configure and link steps always run.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO="$(pwd -P)"
SHARED="$(cd .. && pwd -P)/shared"
# A symlinked ../shared is copied as what it points to (cp -a would copy the link itself).
[ -L "$SHARED" ] && SHARED="$(readlink -f "$SHARED")"
KEEP=0
for arg in "$@"; do
  case "$arg" in
    --keep) KEEP=1 ;;
    *) echo "usage: scripts/check-bare-install.sh [--keep]" >&2; exit 2 ;;
  esac
done

fail() { echo "check-bare-install: $*" >&2; exit 1; }
if [ "$(id -u)" != 0 ]; then
  command -v sudo >/dev/null || fail "needs root (chroot and mounts) and sudo is not installed"
  exec sudo TMPDIR="${TMPDIR:-/tmp}" SDC_BARE_SOURCES="${SDC_BARE_SOURCES:-}" \
    SDC_BARE_CCACHE="${SDC_BARE_CCACHE:-}" bash "$0" "$@"
fi
git rev-parse --is-inside-work-tree >/dev/null 2>&1 ||
  fail "$REPO is not a git checkout: the copy put into the root is the checkout's tracked files"
[ -d "$SHARED/fixtures/tiny-sd15" ] || fail "no $SHARED/fixtures/tiny-sd15 (the tiny fixture model)"

T0=$SECONDS
stamp() { echo "== check-bare-install: $1 ($((SECONDS - T0)) s so far)"; }
bash scripts/install-deps.sh ci  # mmdebstrap, on this machine

# The Debian mirror(s) this machine's apt uses for bookworm's main component.
if [ -n "${SDC_BARE_SOURCES:-}" ]; then
  IFS=';' read -r -a SOURCES <<<"$SDC_BARE_SOURCES"
else
  # shellcheck disable=SC2016  # apt's own $(FIELD) placeholders, not shell expansions
  mapfile -t SOURCES < <(apt-get indextargets --format '$(REPO_URI) $(RELEASE) $(COMPONENT)' \
    'Identifier: Packages' | awk '$2 ~ /^bookworm(-updates|-security)?$/ && $3 == "main" {
      print "deb " $1 " " $2 " main" }' | sort -u)
  printf '%s\n' "${SOURCES[@]}" | grep -q ' bookworm main$' ||
    fail "this machine's apt has no Debian bookworm main source (/etc/apt/sources.list*);" \
      "set SDC_BARE_SOURCES='deb http://deb.debian.org/debian bookworm main'"
fi

WORK="$(mktemp -d "${TMPDIR:-/tmp}/sdc-bare.XXXXXX")"
chmod 0755 "$WORK"  # apt downloads as _apt, which must reach the root inside
case "$WORK/" in "$REPO"/* | "$SHARED"/*) fail "TMPDIR ($WORK) must be outside the source tree" ;; esac
ROOT="$WORK/root"
CACHE="" CACHE_OWNER=""
cleanup() {
  local status=$?
  # What the root's ccache wrote belongs to the cache's owner (CI's user, not sudo's root), also
  # when the check failed half-way.
  if [ -n "$CACHE_OWNER" ]; then chown -R "$CACHE_OWNER" "$CACHE" || true; fi
  # The chroot's mounts live in their own mount namespace and vanish with it; unmount anything
  # left under the root anyway (deepest first) before removing, and never cross into a mount.
  local m
  while read -r m; do umount -l "$m" 2>/dev/null || true; done < <(
    awk -v root="$ROOT/" 'index($2 "/", root) == 1 { print $2 }' /proc/self/mounts | sort -r)
  if [ "$KEEP" = 1 ]; then
    echo "check-bare-install: kept the root at $ROOT"
  else
    rm -rf --one-file-system "$WORK"
  fi
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

echo "== check-bare-install: a minimal Debian 12 root in $ROOT from:"
printf '   %s\n' "${SOURCES[@]}"
if ! mmdebstrap --variant=minbase --mode=root bookworm "$ROOT" "${SOURCES[@]}" \
    >"$WORK/mmdebstrap.log" 2>&1; then
  tail -n 20 "$WORK/mmdebstrap.log" >&2
  fail "could not make the bare Debian 12 root: no answer from the mirror(s) above, or they" \
    "refused (mmdebstrap's last lines above). This stage cannot be skipped: fix the network or" \
    "set SDC_BARE_SOURCES to a reachable mirror."
fi
stamp "root made"

# A clean copy, as a fresh clone has it: the tracked files (with their working-tree contents),
# nothing built or ignored; ../shared beside it, as the README's layout has it.
mkdir -p "$ROOT/src/sdc"
git ls-files -z | while IFS= read -r -d '' f; do
  if [ -e "$f" ] || [ -L "$f" ]; then printf '%s\0' "$f"; fi
done | tar -c --null -T - -f - | tar -x -f - -C "$ROOT/src/sdc"
cp -a "$SHARED" "$ROOT/src/shared"
cp -L /etc/resolv.conf "$ROOT/etc/resolv.conf"  # name resolution for apt inside the root

# Inside: a private mount namespace with /proc (CMake, nproc, oneDNN's CPU detection read it)
# and /dev/pts (apt logs dpkg's output through a pseudo-terminal), a clean environment, and exactly the README's first command, then the two commands a user
# tries next on the tiny model. The fixture paths are relative to the repo, as the README says.
# shellcheck disable=SC2016  # expanded inside the root, not here
INSIDE='
set -euo pipefail
cd /src/sdc
echo "== inside: bash scripts/setup.sh"
start=$SECONDS
bash scripts/setup.sh
echo "== inside: setup.sh took $((SECONDS - start)) s"
test -s first-image.png || { echo "setup.sh wrote no first-image.png" >&2; exit 1; }
FIX=../shared/fixtures/tiny-sd15
echo "== inside: sdc inspect"
build/sdc inspect "$FIX/model.safetensors" --model-config "$FIX/diffusers"
echo "== inside: sdc generate"
build/sdc generate -m "$FIX/model.safetensors" --model-config "$FIX/diffusers" \
  -p "a lighthouse at dusk" -W 128 -H 128 --steps 4 --seed 7 -o /tmp/bare-check.png
build/sdc inspect /tmp/bare-check.png
'
CACHE="${SDC_BARE_CCACHE:-}"
if [ -n "$CACHE" ]; then
  mkdir -p "$CACHE" "$ROOT/root/.cache/ccache"
  CACHE_OWNER="$(stat -c %u:%g "$CACHE")"  # cleanup() gives what the root wrote back to it
fi
# shellcheck disable=SC2016  # $1/$2/$3 are the inner bash's arguments
unshare --mount --propagation private -- bash -euc '
  mount -t proc proc "$1/proc"
  mount -t devpts -o newinstance,ptmxmode=0666 devpts "$1/dev/pts"
  if [ -n "$3" ]; then mount --bind "$3" "$1/root/.cache/ccache"; fi
  exec chroot "$1" /usr/bin/env -i HOME=/root LANG=C.UTF-8 TERM=dumb \
    PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin bash -c "$2"
' unshare-bash "$ROOT" "$INSIDE" "$CACHE" || fail "the README's first command, or sdc after it, failed on a bare Debian 12 root (output above)"
stamp "passed: bash scripts/setup.sh, sdc inspect and sdc generate on a bare Debian 12 root"
