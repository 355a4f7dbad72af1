//! embassy-time driver on the Cortex-M SysTick: a 1 kHz tick (the crate's
//! `tick-hz-1_000`) counted into a 64-bit clock, and the executor's integrated
//! timer queue served from the SysTick handler.
//!
//! SysTick exists on every Cortex-M, so the driver needs nothing from the
//! board but its core clock. 1 ms resolution is ample for BGP (timers in
//! seconds) and TCP (retransmission in hundreds of ms); under QEMU a 1 kHz
//! interrupt costs little while the core sleeps in WFI between ticks.

use core::cell::{Cell, RefCell};
use core::task::Waker;

use cortex_m::peripheral::SYST;
use cortex_m::peripheral::syst::SystClkSource;
use critical_section::Mutex;
use embassy_time_driver::Driver;
use embassy_time_queue_utils::Queue;

/// The core clock SysTick counts (SYSCLK of the MPS2 FPGA images).
pub const CORE_HZ: u32 = 25_000_000;

struct SysTickDriver {
    /// Ticks since `init`.
    now: Mutex<Cell<u64>>,
    /// Tick at which the queue next has work; `u64::MAX` when empty.
    alarm: Mutex<Cell<u64>>,
    queue: Mutex<RefCell<Queue>>,
}

embassy_time_driver::time_driver_impl!(static DRIVER: SysTickDriver = SysTickDriver {
    now: Mutex::new(Cell::new(0)),
    alarm: Mutex::new(Cell::new(u64::MAX)),
    queue: Mutex::new(RefCell::new(Queue::new())),
});

impl Driver for SysTickDriver {
    fn now(&self) -> u64 {
        critical_section::with(|cs| self.now.borrow(cs).get())
    }

    fn schedule_wake(&self, at: u64, waker: &Waker) {
        critical_section::with(|cs| {
            let mut queue = self.queue.borrow_ref_mut(cs);
            if queue.schedule_wake(at, waker) {
                // Wakes what is already due; the rest waits for its tick.
                let next = queue.next_expiration(self.now.borrow(cs).get());
                self.alarm.borrow(cs).set(next);
            }
        });
    }
}

impl SysTickDriver {
    fn tick(&self) {
        critical_section::with(|cs| {
            let now = self.now.borrow(cs).get() + 1;
            self.now.borrow(cs).set(now);
            if now >= self.alarm.borrow(cs).get() {
                let next = self.queue.borrow_ref_mut(cs).next_expiration(now);
                self.alarm.borrow(cs).set(next);
            }
        });
    }
}

/// Starts SysTick at `embassy_time_driver::TICK_HZ` from the core clock.
pub fn init(mut syst: SYST) {
    syst.set_clock_source(SystClkSource::Core);
    syst.set_reload(CORE_HZ / embassy_time_driver::TICK_HZ as u32 - 1);
    syst.clear_current();
    syst.enable_interrupt();
    syst.enable_counter();
}

#[cortex_m_rt::exception]
fn SysTick() {
    DRIVER.tick();
}
