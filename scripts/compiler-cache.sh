#!/usr/bin/env bash
# Sourced by setup.sh, test.sh and .ci/run: where the compiler cache (ccache) lives and the CMake
# arguments that compile through it. A second build of the same sources — a re-run of setup.sh
# after `git pull`, test.sh after setup.sh, or CI's Release build after its bare-root stage built
# the same files — recompiles only what changed.
#   compiler_cache_dir         prints the cache folder (CCACHE_DIR, else ~/.cache/ccache)
#   compiler_cache_cmake_args  exports ccache's settings and fills COMPILER_CACHE_ARGS with the
#                              -DCMAKE_*_COMPILER_LAUNCHER arguments (empty: no ccache, or the
#                              folder is not writable)

compiler_cache_dir() {
  echo "${CCACHE_DIR:-${XDG_CACHE_HOME:-${HOME:-/nonexistent}/.cache}/ccache}"
}

compiler_cache_cmake_args() {
  COMPILER_CACHE_ARGS=()
  local dir
  dir="$(compiler_cache_dir)"
  command -v ccache >/dev/null 2>&1 || return 0
  mkdir -p "$dir" 2>/dev/null && [ -w "$dir" ] || return 0
  export CCACHE_DIR="$dir"
  # Cache entries independent of where the checkout lies (a clone, CI's bare root at /src/sdc).
  export CCACHE_BASEDIR="${CCACHE_BASEDIR:-$(pwd -P)}"
  # The test programs use a precompiled header: ccache caches those only with these allowed.
  export CCACHE_SLOPPINESS="${CCACHE_SLOPPINESS:-pch_defines,time_macros}"
  COMPILER_CACHE_ARGS=(-DCMAKE_C_COMPILER_LAUNCHER=ccache -DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
}
