#!/bin/sh
# Footprint of corebgp on real firmware images (thumbv7em-none-eabihf), on two
# boards running the same BGP application (examples/firmware-shared/bgp_app.rs):
#   NUCLEO-H743ZI   examples/firmware-nucleo-h743zi (embassy-stm32, defmt over RTT)
#   QEMU MPS2 AN500 examples/firmware-qemu-mps2 (LAN9118 driver, plain-text UART log)
# Flash and static RAM of three images per board, release profile (opt-level
# "z", fat LTO, codegen-units 1, panic abort), measured with llvm-size:
#   baseline      board + embassy-net stack, no TCP socket
#   tcp_baseline  + one plain TCP connection (what any networked firmware has)
#   bgp           + corebgp (core driver + session + UPDATE codec + adapter)
#                 and the application, one active peer
# Needs: rustup target add thumbv7em-none-eabihf; rustup component add llvm-tools
# Usage: corebgp-embassy/size.sh [--no-build]
set -eu
here=$(cd "$(dirname "$0")" && pwd)
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
build=yes
[ "${1:-}" = "--no-build" ] && build=no

# Berkeley format: text (= vector table + code + rodata = flash, with data's
# initialisers) data bss
size_of() { "$bin/llvm-size" "$out/$1" | awk 'NR==2 { print $1, $2, $3 }'; }

# measure TITLE DIR [FEATURES]: builds the firmware in DIR (with FEATURES, in
# a target directory of their own) and prints its three images.
measure() {
    fw="$here/../examples/$2"
    tgt="$fw/target${3:+/$3}"
    if [ "$build" = yes ]; then
        (cd "$fw" && CARGO_TARGET_DIR="$tgt" cargo build --release --bins ${3:+--features "$3"})
    fi
    out="$tgt/thumbv7em-none-eabihf/release"
    set -- "$1" $(size_of baseline)
    title=$1 bt=$2 bd=$3 bb=$4
    set -- $(size_of tcp_baseline); tt=$1 td=$2 tb=$3
    set -- $(size_of bgp); gt=$1 gd=$2 gb=$3

    echo "$title"
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
    echo
}

measure "NUCLEO-H743ZI (STM32H743ZI, Cortex-M7)" firmware-nucleo-h743zi
measure "QEMU MPS2 AN500 (Cortex-M7, LAN9118)" firmware-qemu-mps2
# The QEMU board logs plain text with core::fmt (the NUCLEO uses defmt, whose
# formatting happens on the host): the same images with the log compiled out
# show corebgp's own increment on this board.
measure "QEMU MPS2 AN500, log compiled out (--features quiet)" firmware-qemu-mps2 quiet
