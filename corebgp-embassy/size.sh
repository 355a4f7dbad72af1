#!/bin/sh
# Footprint of corebgp on a real firmware image (NUCLEO-H743ZI, thumbv7em-none-eabihf):
# flash and static RAM of three images of examples/firmware-nucleo-h743zi, release
# profile (opt-level "z", fat LTO, codegen-units 1, panic abort), measured with llvm-size:
#   baseline      board + embassy-net stack, no TCP socket
#   tcp_baseline  + one plain TCP connection (what any networked firmware has)
#   bgp           + corebgp (core driver + session + UPDATE codec + adapter), one active peer
# Needs: rustup target add thumbv7em-none-eabihf; rustup component add llvm-tools
# Usage: corebgp-embassy/size.sh [--no-build]
set -eu
here=$(cd "$(dirname "$0")" && pwd)
fw="$here/../examples/firmware-nucleo-h743zi"
sysroot=$(rustc --print sysroot)
host=$(rustc -vV | sed -n 's/^host: //p')
bin="$sysroot/lib/rustlib/$host/bin"
if [ ! -x "$bin/llvm-size" ]; then
    echo "llvm-size not found in $bin: run 'rustup component add llvm-tools'" >&2
    exit 1
fi
if ! rustup target list --installed | grep -qx thumbv7em-none-eabihf; then
    echo "thumbv7em-none-eabihf missing: run 'rustup target add thumbv7em-none-eabihf'" >&2
    exit 1
fi
if [ "${1:-}" != "--no-build" ]; then
    (cd "$fw" && cargo build --release --bins)
fi
out="$fw/target/thumbv7em-none-eabihf/release"

# Berkeley format: text (= vector table + code + rodata = flash, with data's
# initialisers) data bss
size_of() { "$bin/llvm-size" "$out/$1" | awk 'NR==2 { print $1, $2, $3 }'; }
set -- $(size_of baseline); bt=$1 bd=$2 bb=$3
set -- $(size_of tcp_baseline); tt=$1 td=$2 tb=$3
set -- $(size_of bgp); gt=$1 gd=$2 gb=$3

printf '%-14s %10s %8s %8s %12s %12s\n' image "flash(B)" "data(B)" "bss(B)" "Δflash" "ΔRAM"
printf '%-14s %10d %8d %8d %12s %12s\n' baseline "$((bt + bd))" "$bd" "$bb" - -
printf '%-14s %10d %8d %8d %12s %12s\n' tcp_baseline "$((tt + td))" "$td" "$tb" \
    "+$((tt + td - bt - bd))" "+$((td + tb - bd - bb))"
printf '%-14s %10d %8d %8d %12s %12s\n' bgp "$((gt + gd))" "$gd" "$gb" \
    "+$((gt + gd - tt - td))" "+$((gd + gb - td - tb))"
echo "(Δ = against the previous line; flash = text + data; RAM = data + bss)"
echo
echo "Largest statics of bgp (bytes):"
"$bin/llvm-nm" --size-sort -C -S --radix=d "$out/bgp" | awk '$3 ~ /[bBdD]/' | tail -8
