//! Puts memory.x and device.x (cortex-m-rt's `device` feature) on the linker
//! search path.
use std::{env, fs, path::PathBuf};

fn main() {
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    for file in ["memory.x", "device.x"] {
        fs::copy(file, out.join(file)).expect("copy linker script into OUT_DIR");
        println!("cargo:rerun-if-changed={file}");
    }
    println!("cargo:rustc-link-search={}", out.display());
    println!("cargo:rerun-if-changed=build.rs");
}
