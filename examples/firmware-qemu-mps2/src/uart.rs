//! Logging to the host: plain text lines on the board's CMSDK APB UART0, which
//! QEMU connects to its first serial port (stdio with `-nographic`).
//!
//! Plain text, not defmt: the host test and a user at the terminal read the
//! log as it comes, with no decoder (`defmt-print`) and no ELF to match.
//! Every line is `[seconds.millis] LEVEL message`.

use core::fmt::{self, Write};

/// CMSDK APB UART0 of the MPS2 FPGA images (AN385/AN386/AN500).
const UART0: usize = 0x4000_4000;
const DATA: usize = 0x00;
const STATE: usize = 0x04;
const CTRL: usize = 0x08;
const BAUDDIV: usize = 0x10;
/// STATE: the TX buffer is full.
const STATE_TX_FULL: u32 = 1 << 0;
/// CTRL: transmitter enabled.
const CTRL_TX_EN: u32 = 1 << 0;
/// The UART's clock (SYSCLK of the FPGA image).
const PCLK_HZ: u32 = 25_000_000;

fn write_reg(offset: usize, value: u32) {
    // SAFETY: UART0 + offset is a register of the CMSDK UART, mapped for the
    // lifetime of the program; a volatile word access has no memory-safety
    // effect on Rust-owned memory.
    unsafe { core::ptr::write_volatile((UART0 + offset) as *mut u32, value) }
}

fn read_reg(offset: usize) -> u32 {
    // SAFETY: as in `write_reg`; reading STATE has no side effect.
    unsafe { core::ptr::read_volatile((UART0 + offset) as *const u32) }
}

/// Enables the transmitter at 115200 baud (the rate is irrelevant to QEMU
/// but a divisor below 16 is rejected by the model).
pub fn init() {
    write_reg(BAUDDIV, PCLK_HZ / 115_200);
    write_reg(CTRL, CTRL_TX_EN);
}

/// The UART as a `core::fmt::Write` sink (blocking, byte by byte).
pub struct Uart;

impl Write for Uart {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for b in s.bytes() {
            while read_reg(STATE) & STATE_TX_FULL != 0 {}
            write_reg(DATA, u32::from(b));
        }
        Ok(())
    }
}

/// Writes one log line; called by the [`info!`](crate::info) and
/// [`warn!`](crate::warn) macros. Lines are written in a critical section so
/// that an interrupt handler's line never splits another.
pub fn log(level: &str, args: fmt::Arguments<'_>) {
    let ms = embassy_time::Instant::now().as_millis();
    critical_section::with(|_| {
        let _ = writeln!(
            Uart,
            "[{:>5}.{:03}] {} {}",
            ms / 1000,
            ms % 1000,
            level,
            args
        );
    });
}

/// Logs a line at level INFO (`core::fmt` syntax).
#[macro_export]
macro_rules! info {
    // `quiet` keeps the arguments type-checked but drops the formatting, so
    // size.sh can tell corebgp's bytes from the text log's.
    ($($arg:tt)*) => {
        if cfg!(not(feature = "quiet")) {
            $crate::uart::log("INFO", format_args!($($arg)*))
        }
    };
}

/// Logs a line at level WARN (`core::fmt` syntax).
#[macro_export]
macro_rules! warn {
    ($($arg:tt)*) => {
        if cfg!(not(feature = "quiet")) {
            $crate::uart::log("WARN", format_args!($($arg)*))
        }
    };
}
