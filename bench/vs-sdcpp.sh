#!/usr/bin/env bash
# sdc against stable-diffusion.cpp on the same machine and the same checkpoint.
#
#   bench/vs-sdcpp.sh SDCPP_SOURCE_DIR [--sdc PATH] [--work DIR] [--threads N] [--jobs N]
#                     [--cases LIST] [--seed N] [--no-taesd] [--precision P] [--compiled]
#                     [--vae-precision P] [--repeat N] [--pause S]
#
# SDCPP_SOURCE_DIR is a stable-diffusion.cpp checkout with its ggml submodule (git clone
# --recursive, or git submodule update --init ggml); nothing is downloaded. The script
#   1. builds its CLI (sd-cli, or sd in older versions) in WORK/sdcpp-build, outside the source
#      (an existing build there is reused: only what changed is rebuilt);
#   2. writes one full-size SD1.5 with random weights as an fp16 safetensors checkpoint
#      (sdc bench --write-checkpoint) and a random TAESD as a diffusers AutoencoderTiny folder
#      (sdc bench --write-taesd; both tools read it), reused on later runs;
#   3. runs each tool as a whole process, one after the other, on every case:
#        lcm256    256x256 LCM 4 steps, cfg 1
#        lcm512    512x512 LCM 4 steps, cfg 1
#        euler512  512x512 euler_a 20 steps, cfg 7
#        taesd512  512x512 LCM 4 steps, cfg 1, the image decoded by TAESD (--no-taesd: skipped)
#      under /usr/bin/time -v (wall time, peak RSS: load, compile, sampling, decode, PNG);
#   4. prints a table: wall time and peak RSS of each tool, and sd.cpp / sdc ratios (> 1: sdc is
#      faster / smaller). With --repeat N, sdc runs N times per case (sd.cpp once: minutes) and
#      the table shows the median of its wall times, all of them listed under it; on a machine
#      whose speed drifts from minute to minute one run says little.
# sdc runs at --precision auto (bf16 where it beats f32: AMX-BF16 or AMD's AVX512-BF16; else f32)
# unless --precision says otherwise (int8: the UNet W8A8; --vae-precision int8: the VAE decoder
# W8A8 too). sd.cpp computes as its ggml CPU
# backend does with f16 weights. With --compiled, sdc first compiles the checkpoint once into a
# .gguf the way a deployment would (sdc convert, weights packed for this CPU, both image sizes
# planned at load; int8: -t unet=int8, and vae=int8 with --vae-precision int8) and every sdc run
# loads that file; the convert's time is
# printed apart, and sd.cpp still reads the checkpoint. Logs and images stay in WORK/runs.
#
# Options:
#   --sdc PATH      the sdc binary (default: build/sdc of this checkout)
#   --work DIR      build folder, checkpoint and logs (default: ${TMPDIR:-/tmp}/sdc-vs-sdcpp)
#   --threads N     threads for both tools (default: all hardware threads)
#   --jobs N        parallel compile jobs for sd.cpp (default: all hardware threads)
#   --cases LIST    comma-separated subset of lcm256,lcm512,euler512,taesd512 (default: all)
#   --seed N        seed of the random weights (default 1) and of the images (default 42)
#   --no-taesd      leave out the TAESD row
#   --precision P   sdc's --precision: auto (default), f32, bf16 or int8
#   --compiled      sdc runs from a file sdc convert made once from the checkpoint (see above)
#   --vae-precision P   sdc's --vae-precision: auto (default) or int8 (the VAE and TAESD decoders W8A8)
#   --repeat N      sdc runs per case (default 1); the table shows their median wall time
#   --pause S       seconds to wait before each run (default 0). On a VM that hands freed memory
#                   back to its host (free page reporting), a run started right after another
#                   reuses the memory that one freed and does not pay for fresh memory, which a
#                   process started on its own does (README, Memory, "Huge pages")
set -euo pipefail

die() {
  echo "vs-sdcpp.sh: $*" >&2
  exit 2
}

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
src="" sdc="$here/../build/sdc" work="${TMPDIR:-/tmp}/sdc-vs-sdcpp"
threads=$(nproc) jobs=$(nproc) cases="lcm256,lcm512,euler512,taesd512" seed=1 taesd=1
precision=auto compiled=0 vae_precision=auto repeat=1 pause=0
while [ $# -gt 0 ]; do
  case "$1" in
    --sdc) sdc=${2:?--sdc needs a path}; shift 2 ;;
    --work) work=${2:?--work needs a folder}; shift 2 ;;
    --threads) threads=${2:?--threads needs a number}; shift 2 ;;
    --jobs) jobs=${2:?--jobs needs a number}; shift 2 ;;
    --cases) cases=${2:?--cases needs a list}; shift 2 ;;
    --seed) seed=${2:?--seed needs a number}; shift 2 ;;
    --no-taesd) taesd=0; shift ;;
    --precision) precision=${2:?--precision needs a value}; shift 2 ;;
    --compiled) compiled=1; shift ;;
    --vae-precision) vae_precision=${2:?--vae-precision needs a value}; shift 2 ;;
    --repeat) repeat=${2:?--repeat needs a number}; shift 2 ;;
    --pause) pause=${2:?--pause needs a number of seconds}; shift 2 ;;
    -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    -*) die "unknown option $1 (see --help)" ;;
    *) [ -z "$src" ] || die "one source folder expected, found a second: $1"; src=$1; shift ;;
  esac
done

# --- checks, each a one-line error -----------------------------------------------------------
[ -n "$src" ] || die "usage: bench/vs-sdcpp.sh SDCPP_SOURCE_DIR [options] (see --help)"
[ -d "$src" ] || die "$src: not a folder (expected a stable-diffusion.cpp checkout)"
src=$(cd "$src" && pwd -P)
grep -qs 'project("stable-diffusion")' "$src/CMakeLists.txt" ||
  die "$src: not a stable-diffusion.cpp checkout (no CMakeLists.txt with project(\"stable-diffusion\"))"
[ -f "$src/ggml/CMakeLists.txt" ] ||
  die "$src: the ggml submodule is missing (run: git -C $src submodule update --init ggml)"
cli_cmake="$src/examples/cli/CMakeLists.txt"
target=$(sed -n 's/^set(TARGET \([A-Za-z0-9_-]*\)).*/\1/p' "$cli_cmake" 2>/dev/null | head -n 1)
[ -n "$target" ] || die "$src: no command-line example (examples/cli/CMakeLists.txt with set(TARGET ...))"
[[ "$threads" =~ ^[1-9][0-9]*$ ]] || die "--threads: expected a positive number, found '$threads'"
[[ "$jobs" =~ ^[1-9][0-9]*$ ]] || die "--jobs: expected a positive number, found '$jobs'"
[[ "$seed" =~ ^[0-9]+$ ]] || die "--seed: expected a number, found '$seed'"
[[ "$repeat" =~ ^[1-9][0-9]*$ ]] || die "--repeat: expected a positive number, found '$repeat'"
[[ "$pause" =~ ^[0-9]+$ ]] || die "--pause: expected a whole number of seconds, found '$pause'"
case "$precision" in auto | f32 | bf16 | int8) ;; *) die "--precision: expected auto, f32, bf16 or int8, found '$precision'" ;; esac
case "$vae_precision" in auto | int8) ;; *) die "--vae-precision: expected auto or int8, found '$vae_precision'" ;; esac
[ -x "$sdc" ] || die "$sdc: no sdc binary (build sdc first, or pass --sdc PATH)"
sdc=$(cd "$(dirname "$sdc")" && pwd -P)/$(basename "$sdc")
if ! /usr/bin/time -v true >/dev/null 2>&1; then
  die "/usr/bin/time -v is needed for wall time and peak RSS (Debian/Ubuntu: apt install time)"
fi
command -v cmake >/dev/null || die "cmake is needed to build stable-diffusion.cpp"
IFS=, read -r -a case_list <<<"$cases"
[ ${#case_list[@]} -gt 0 ] || die "--cases: expected a comma-separated list of lcm256, lcm512, euler512, taesd512"
for c in "${case_list[@]}"; do
  case "$c" in lcm256 | lcm512 | euler512 | taesd512) ;;
    *) die "--cases: expected a comma-separated list of lcm256, lcm512, euler512, taesd512, found '$c'" ;;
  esac
done
work=$(realpath -m "$work")
case "$work/" in "$src"/*) die "--work $work: inside the stable-diffusion.cpp source (the build goes outside it)" ;; esac
mkdir -p "$work" || die "$work: cannot create the work folder"

# --- 1. build stable-diffusion.cpp -----------------------------------------------------------
build="$work/sdcpp-build"
echo "== building stable-diffusion.cpp ($target) from $src in $build" >&2
cmake -S "$src" -B "$build" -DCMAKE_BUILD_TYPE=Release -DSD_WEBP=OFF -DSD_WEBM=OFF \
  -DSD_SERVER_BUILD_FRONTEND=OFF >"$work/sdcpp-cmake.log" 2>&1 ||
  die "cmake configure failed: see $work/sdcpp-cmake.log"
cmake --build "$build" --target "$target" -j "$jobs" >"$work/sdcpp-build.log" 2>&1 ||
  die "the stable-diffusion.cpp build failed: see $work/sdcpp-build.log"
sdcpp="$build/bin/$target"
[ -x "$sdcpp" ] || sdcpp=$(find "$build" -type f -name "$target" -perm -u+x | head -n 1)
[ -x "$sdcpp" ] || die "built, but no $target binary under $build"

# --- 2. the checkpoint (and TAESD) -----------------------------------------------------------
ckpt="$work/sd15-random-seed$seed-fp16.safetensors"
if [ ! -s "$ckpt" ]; then
  echo "== writing $ckpt" >&2
  "$sdc" bench --seed "$seed" --write-checkpoint "$ckpt.part" && mv "$ckpt.part" "$ckpt"
fi
taesd_dir="$work/taesd-random-seed$seed"
if [ "$taesd" = 1 ] && [ ! -s "$taesd_dir/diffusion_pytorch_model.safetensors" ]; then
  "$sdc" bench --seed "$seed" --write-taesd "$taesd_dir"
fi

# --- 3. the runs -----------------------------------------------------------------------------
runs="$work/runs"
mkdir -p "$runs"
sdc_model="$ckpt" convert_note=""
if [ "$compiled" = 1 ]; then
  # Once, as a deployment would: weights packed for this CPU, both sizes planned at load.
  type=f16
  [ "$precision" = int8 ] && type=unet=int8
  [ "$precision" = bf16 ] && type=bf16
  if [ "$vae_precision" = int8 ]; then
    if [ "$type" = unet=int8 ]; then type=unet=int8,vae=int8; else type=unet=$type,vae=int8; fi
  fi
  sdc_model="$work/sd15-random-seed$seed-$type-native.gguf"
  rm -f "$sdc_model"
  echo "== sdc convert -t $type --target native -s 256 256 512 512" >&2
  convert_start=$(date +%s.%N)
  "$sdc" convert -u "$ckpt" -t "$type" --target native -s 256 256 512 512 -o "$sdc_model" \
    >"$runs/sdc-convert.log" 2>&1 || die "sdc convert failed: see $runs/sdc-convert.log"
  convert_s=$(awk -v a="$convert_start" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
  convert_note="sdc model: $sdc_model, made once by sdc convert -t $type --target native in $convert_s s"
fi
prompt="a photograph of an astronaut riding a horse on the moon, highly detailed"

# measure NAME CMD...: runs CMD under /usr/bin/time -v; sets wall (s), rss (MiB), ok, load.
measure() {
  local name=$1
  shift
  sleep "$pause"
  load=$(cut -d' ' -f1 /proc/loadavg)
  echo "== $name (load $load): $*" >&2
  if /usr/bin/time -v -o "$runs/$name.time" "$@" >"$runs/$name.log" 2>&1; then ok=1; else ok=0; fi
  wall=$(awk -F': ' '/Elapsed \(wall clock\)/ {
      n = split($2, p, ":"); s = 0; for (i = 1; i <= n; ++i) s = s * 60 + p[i]; printf "%.2f", s }' \
    "$runs/$name.time")
  rss=$(awk -F': ' '/Maximum resident set size/ { printf "%.0f", $2 / 1024 }' "$runs/$name.time")
  if [ "$ok" = 1 ]; then
    echo "   $wall s, peak RSS $rss MiB" >&2
  else
    echo "   FAILED: see $runs/$name.log" >&2
  fi
}

show() { if [ "$1" = 1 ]; then echo "$2"; else echo "failed"; fi; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a > 0 && b > 0) printf "%.2f", a / b; else print "-" }'; }

rows=() notes=()
for c in "${case_list[@]}"; do
  extra_sdc=() extra_sdcpp=()
  case "$c" in
    lcm256) w=256 steps=4 cfg=1 sampler=lcm title="256x256 LCM 4 steps cfg 1" ;;
    lcm512) w=512 steps=4 cfg=1 sampler=lcm title="512x512 LCM 4 steps cfg 1" ;;
    euler512) w=512 steps=20 cfg=7 sampler=euler_a title="512x512 euler_a 20 steps cfg 7" ;;
    taesd512)
      [ "$taesd" = 1 ] || continue
      w=512 steps=4 cfg=1 sampler=lcm title="512x512 LCM 4 steps cfg 1 + TAESD"
      extra_sdc=(--taesd "$taesd_dir" --decode-with taesd)
      extra_sdcpp=(--taesd "$taesd_dir/diffusion_pytorch_model.safetensors")
      ;;
  esac
  walls=() sdc_rss=0 sdc_ok=1
  for ((k = 1; k <= repeat; ++k)); do
    name=$c-sdc
    [ "$repeat" = 1 ] || name=$c-sdc-$k
    measure "$name" "$sdc" generate -m "$sdc_model" -p "$prompt" -W "$w" -H "$w" --steps "$steps" \
      --cfg-scale "$cfg" --sampler "$sampler" --seed 42 --threads "$threads" \
      --precision "$precision" --vae-precision "$vae_precision" -o "$runs/$c-sdc.png" \
      "${extra_sdc[@]}"
    [ "$k" = 1 ] && sdc_load=$load
    [ "$ok" = 1 ] || sdc_ok=0
    walls+=("$wall")
    [ "${rss:-0}" -gt "$sdc_rss" ] && sdc_rss=$rss
  done
  # The median (the lower middle one for an even count) and every run, in run order.
  sdc_wall=$(printf '%s\n' "${walls[@]}" | sort -g | sed -n "$(((repeat + 1) / 2))p")
  [ "$repeat" = 1 ] || notes+=("$title: sdc runs ${walls[*]} s (median $sdc_wall s)")
  measure "$c-sdcpp" "$sdcpp" -m "$ckpt" -p "$prompt" -W "$w" -H "$w" --steps "$steps" \
    --cfg-scale "$cfg" --sampling-method "$sampler" --seed 42 -t "$threads" \
    -o "$runs/$c-sdcpp.png" "${extra_sdcpp[@]}"
  rows+=("$(printf '%-34s %10s %10s %11s %11s %8s %8s %5s %5s' "$title" \
    "$(show $sdc_ok "$sdc_wall s")" "$(show $sdc_ok "$sdc_rss MiB")" \
    "$(show $ok "$wall s")" "$(show $ok "$rss MiB")" \
    "$([ $sdc_ok$ok = 11 ] && ratio "$wall" "$sdc_wall" || echo -)" \
    "$([ $sdc_ok$ok = 11 ] && ratio "$rss" "$sdc_rss" || echo -)" "$sdc_load" "$load")")
done

# --- 4. the table ----------------------------------------------------------------------------
cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)
sdcpp_version=$(git -C "$src" describe --tags --always 2>/dev/null || echo "unknown version")
echo
echo "sdc vs stable-diffusion.cpp ($sdcpp_version), whole process each, one after the other"
echo "CPU: $cpu, $(nproc) hardware threads, $threads used; sdc --precision $precision --vae-precision $vae_precision"
echo "Checkpoint: $ckpt (full-size SD1.5, random weights, fp16)"
[ -z "$convert_note" ] || echo "$convert_note"
echo "ratio = sd.cpp / sdc (> 1: sdc faster / smaller); load = 1-min load average before each run"
printf '%-34s %10s %10s %11s %11s %8s %8s %5s %5s\n' "case" "sdc wall" "sdc RSS" "sd.cpp wall" \
  "sd.cpp RSS" "wall x" "RSS x" "load" "load"
printf '%-34s %10s %10s %11s %11s %8s %8s %5s %5s\n' "" "" "" "" "" "" "" "sdc" "sdcpp"
for r in "${rows[@]}"; do echo "$r"; done
for n in "${notes[@]}"; do echo "$n"; done
echo "Logs and images: $runs"
