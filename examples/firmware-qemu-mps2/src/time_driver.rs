//! embassy-time driver: the clock is the CMSDK APB dual timer's Timer1, a
//! 32-bit free-running down-counter at the 25 MHz SYSCLK, extended to 64 bits;
//! SysTick interrupts at 1 kHz (the crate's `tick-hz-1_000`) serve the
//! executor's integrated timer queue.
//!
//! The time is read from a counter, never counted in interrupts: an emulator
//! starved of host CPU (QEMU's TCG on a busy machine) delivers late timer
//! interrupts as one, and a clock made of interrupts would fall behind real
//! time (a peer's hold timer would run long). The counter wraps every 171 s;
//! the 1 kHz interrupt reads it far more often than that. 1 ms resolution is
//! ample for BGP (timers in seconds) and TCP (retransmission in hundreds of
//! ms); under QEMU a 1 kHz interrupt costs little while the core sleeps in WFI.

use core::cell::{Cell, RefCell};
use core::task::Waker;

use cortex_m::peripheral::SYST;
use cortex_m::peripheral::syst::SystClkSource;
use critical_section::Mutex;
use embassy_time_driver::Driver;
use embassy_time_queue_utils::Queue;

/// The core clock SysTick counts, and the dual timer's clock (SYSCLK of the
/// MPS2 FPGA images).
pub const CORE_HZ: u32 = 25_000_000;
/// Counter cycles per embassy-time tick.
const CYCLES_PER_TICK: u64 = CORE_HZ as u64 / embassy_time_driver::TICK_HZ;

/// CMSDK APB dual timer (QEMU hw/arm/mps2.c), Timer1's registers.
const DUALTIMER1: usize = 0x4000_2000;
const TIMER_LOAD: usize = 0x00;
const TIMER_VALUE: usize = 0x04;
const TIMER_CONTROL: usize = 0x08;
/// CONTROL: enabled, free-running, no interrupt, prescale 1, 32-bit, wrapping.
const TIMER_FREE_RUNNING_32: u32 = (1 << 7) | (1 << 1);

fn timer_write(offset: usize, value: u32) {
    // SAFETY: DUALTIMER1 + offset is a register of the board's dual timer,
    // which only this driver uses; a volatile word access touches no
    // Rust-owned memory.
    unsafe { core::ptr::write_volatile((DUALTIMER1 + offset) as *mut u32, value) }
}

fn timer_value() -> u32 {
    // SAFETY: as in `timer_write`; reading VALUE has no side effect.
    unsafe { core::ptr::read_volatile((DUALTIMER1 + TIMER_VALUE) as *const u32) }
}

struct SysTickDriver {
    /// Counter cycles since `init`, as of the last `last_value` read.
    cycles: Mutex<Cell<u64>>,
    /// The down-counter's value at the last read.
    last_value: Mutex<Cell<u32>>,
    /// Tick at which the queue next has work; `u64::MAX` when empty.
    alarm: Mutex<Cell<u64>>,
    queue: Mutex<RefCell<Queue>>,
}

embassy_time_driver::time_driver_impl!(static DRIVER: SysTickDriver = SysTickDriver {
    cycles: Mutex::new(Cell::new(0)),
    last_value: Mutex::new(Cell::new(u32::MAX)),
    alarm: Mutex::new(Cell::new(u64::MAX)),
    queue: Mutex::new(RefCell::new(Queue::new())),
});

impl Driver for SysTickDriver {
    fn now(&self) -> u64 {
        critical_section::with(|cs| self.now(cs))
    }

    fn schedule_wake(&self, at: u64, waker: &Waker) {
        critical_section::with(|cs| {
            let mut queue = self.queue.borrow_ref_mut(cs);
            if queue.schedule_wake(at, waker) {
                // Wakes what is already due; the rest waits for its tick.
                let next = queue.next_expiration(self.now(cs));
                self.alarm.borrow(cs).set(next);
            }
        });
    }
}

impl SysTickDriver {
    /// Ticks since `init`: the cycles counted down since the last read are
    /// added (a down-counter: last - current, modulo 2^32).
    fn now(&self, cs: critical_section::CriticalSection<'_>) -> u64 {
        let value = timer_value();
        let last = self.last_value.borrow(cs).replace(value);
        let cycles = self.cycles.borrow(cs).get() + u64::from(last.wrapping_sub(value));
        self.cycles.borrow(cs).set(cycles);
        cycles / CYCLES_PER_TICK
    }

    fn tick(&self) {
        critical_section::with(|cs| {
            let now = self.now(cs);
            if now >= self.alarm.borrow(cs).get() {
                let next = self.queue.borrow_ref_mut(cs).next_expiration(now);
                self.alarm.borrow(cs).set(next);
            }
        });
    }
}

/// Starts the clock (dual timer 1) and SysTick at `embassy_time_driver::TICK_HZ`
/// from the core clock.
pub fn init(mut syst: SYST) {
    timer_write(TIMER_LOAD, u32::MAX);
    timer_write(TIMER_CONTROL, TIMER_FREE_RUNNING_32);
    critical_section::with(|cs| DRIVER.last_value.borrow(cs).set(timer_value()));
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
