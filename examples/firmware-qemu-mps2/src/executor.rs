//! The thread-mode executor: embassy's `raw::Executor` polled in a loop that
//! sleeps with WFI.
//!
//! embassy-executor's Cortex-M executor sleeps with WFE, which QEMU models as
//! a yield, not a halt: the emulated core would spin and hold a host CPU. WFI
//! halts QEMU's core until an interrupt. The loop checks for pending work
//! with interrupts masked, so a wake-up from an interrupt handler between
//! the poll and the WFI is never lost (WFI returns at once on a pending
//! interrupt even while PRIMASK masks it).

use core::sync::atomic::{AtomicBool, Ordering};

use embassy_executor::{Spawner, raw};
use static_cell::StaticCell;

/// Set by the pender (a task was woken), cleared before each poll.
static WORK: AtomicBool = AtomicBool::new(false);

#[unsafe(export_name = "__pender")]
fn pender(_context: *mut ()) {
    WORK.store(true, Ordering::Release);
}

/// Runs the executor: `init` spawns the first task(s). Never returns.
pub fn run(init: impl FnOnce(Spawner)) -> ! {
    static EXECUTOR: StaticCell<raw::Executor> = StaticCell::new();
    let executor: &'static raw::Executor = EXECUTOR.init(raw::Executor::new(core::ptr::null_mut()));
    init(executor.spawner());
    loop {
        WORK.store(false, Ordering::Release);
        // SAFETY: `poll` is called from thread mode only, never re-entered,
        // and `executor` is 'static.
        unsafe { executor.poll() };
        cortex_m::interrupt::free(|_| {
            if !WORK.load(Ordering::Acquire) {
                cortex_m::asm::wfi();
            }
        });
    }
}
