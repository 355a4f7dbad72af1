#!/usr/bin/env python3
"""Where corebgp's flash increment goes, by source file or line.

Disassembles the firmware images that `corebgp-embassy/size.sh` builds
(`tcp_baseline` and `bgp`, release, with DWARF line tables) and charges each
instruction to the source line it came from, inlined code included (to the
innermost inlined line). Prints bgp minus tcp_baseline per file (or per line),
largest first. Needs `rustup component add llvm-tools` and a prior
`sh corebgp-embassy/size.sh`.

Usage: python3 corebgp-embassy/flash-by-source.py [file|line] [ROWS]
"""
import collections
import os
import re
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "..", "examples", "firmware-nucleo-h743zi", "target",
                   "thumbv7em-none-eabihf", "release")
SYSROOT = subprocess.check_output(["rustc", "--print", "sysroot"], text=True).strip()
HOST = re.search(r"host: (\S+)", subprocess.check_output(["rustc", "-vV"], text=True)).group(1)
OBJDUMP = os.path.join(SYSROOT, "lib", "rustlib", HOST, "bin", "llvm-objdump")
INSN = re.compile(r"^\s*([0-9a-f]+):\s")
# Shorten registry and toolchain paths to crate/src/...
SHORT = re.compile(r".*/(corebgp-[a-z]+|examples|[a-z0-9_-]+-\d+\.\d+\.\d+|library/core|library/alloc)/")


def charge(image):
    """Bytes per source line (innermost inlined frame) of one ELF image."""
    out = subprocess.run([OBJDUMP, "-d", "-l", "--no-show-raw-insn", image],
                         capture_output=True, text=True, check=True).stdout
    lines = collections.Counter()
    cur, prev = "?", None
    for text in out.splitlines():
        if text.startswith("; /"):
            cur = SHORT.sub(r"\1/", text[2:].strip())
            continue
        if re.match(r"^[0-9a-f]+ <", text):
            prev = None
            continue
        m = INSN.match(text)
        if m:
            addr = int(m.group(1), 16)
            # Thumb instructions are 2 or 4 bytes; larger gaps are padding
            # or literal pools, charged to nobody.
            if prev is not None and 0 < addr - prev[0] <= 4:
                lines[prev[1]] += addr - prev[0]
            prev = (addr, cur)
    return lines


def main():
    mode = sys.argv[1] if len(sys.argv) > 1 else "file"
    rows = int(sys.argv[2]) if len(sys.argv) > 2 else 30
    base, bgp = charge(os.path.join(OUT, "tcp_baseline")), charge(os.path.join(OUT, "bgp"))
    if mode == "file":
        key = lambda k: k.rsplit(":", 2)[0]
    else:
        key = lambda k: k
    diff = collections.Counter()
    for k, v in bgp.items():
        diff[key(k)] += v
    for k, v in base.items():
        diff[key(k)] -= v
    print(f"instructions charged: {sum(diff.values()):+,} bytes (code only; size.sh adds rodata)")
    for k, v in sorted(diff.items(), key=lambda kv: -kv[1])[:rows]:
        print(f"{v:+8,}  {k}")


if __name__ == "__main__":
    main()
