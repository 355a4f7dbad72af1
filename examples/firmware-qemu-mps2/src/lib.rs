//! Board support for QEMU's MPS2 AN500 (Cortex-M7) and AN386 (Cortex-M4)
//! FPGA images, and the pieces shared by the firmware binaries:
//!
//! * `baseline`: board + embassy-net stack (static IPv4), no TCP socket.
//! * `tcp_baseline`: the same + one plain TCP connection (what any networked
//!   firmware carries); the reference for corebgp's own increment.
//! * `bgp`: the same + corebgp: the BGP application of
//!   `examples/firmware-shared/bgp_app.rs` (a module of the binary), shared
//!   with the NUCLEO-H743ZI firmware.
//!
//! Board pieces: [`uart`] (log lines on UART0 = QEMU's serial port),
//! [`time_driver`] (embassy-time on SysTick), [`executor`] (embassy's raw
//! executor in a WFI loop) and [`lan9118`] (the Ethernet controller as an
//! embassy-net driver).
#![no_std]

pub mod config;
pub mod executor;
pub mod lan9118;
pub mod time_driver;
pub mod uart;

use core::fmt::Write as _;

use cortex_m::interrupt::InterruptNumber;
use cortex_m::peripheral::NVIC;
use embassy_executor::Spawner;
use embassy_net::{Stack, StackResources};
use static_cell::StaticCell;

use lan9118::{Lan9118, Regs, State};

/// The LAN9118's register window: 0xA000_0000 on the AN500, 0x4020_0000 on
/// the AN385/AN386 (QEMU `hw/arm/mps2.c`, `ethernet_base`).
#[cfg(not(feature = "an386"))]
const ETHERNET_BASE: usize = 0xa000_0000;
#[cfg(feature = "an386")]
const ETHERNET_BASE: usize = 0x4020_0000;
/// The LAN9118's interrupt: external IRQ 13 on AN385/AN386/AN500.
const ETHERNET_IRQ: u16 = 13;

// SAFETY: ETHERNET_BASE is the LAN9118 on this board (QEMU hw/arm/mps2.c),
// and only the driver and its interrupt handler (both through this value)
// touch it.
const ETHERNET: Regs = unsafe { Regs::new(ETHERNET_BASE) };
static ETHERNET_STATE: State = State::new();

/// The Ethernet controller as an embassy-net driver (it lives in a static;
/// embassy-net drives it through the reference).
pub type Device = &'static mut Lan9118<'static>;

#[derive(Clone, Copy)]
struct Irq(u16);

// SAFETY: `number` returns a valid external interrupt number of this board
// (the NVIC has 32 on AN385/AN386/AN500).
unsafe impl InterruptNumber for Irq {
    fn number(self) -> u16 {
        self.0
    }
}

/// The board's interrupt vectors after the 16 system exceptions (cortex-m-rt
/// `device` feature): the LAN9118 at 13, every other line to
/// `DefaultHandler` (all of them stay masked).
#[unsafe(link_section = ".vector_table.interrupts")]
#[unsafe(no_mangle)]
pub static __INTERRUPTS: [unsafe extern "C" fn(); 32] = {
    let mut v: [unsafe extern "C" fn(); 32] = [DefaultHandler; 32];
    v[ETHERNET_IRQ as usize] = ethernet_interrupt;
    v
};

unsafe extern "C" {
    /// cortex-m-rt's handler for unclaimed interrupts.
    fn DefaultHandler();
}

extern "C" fn ethernet_interrupt() {
    ETHERNET_STATE.on_interrupt(ETHERNET);
}

#[embassy_executor::task]
async fn net_task(mut runner: embassy_net::Runner<'static, Device>) -> ! {
    runner.run().await
}

/// UART, SysTick time driver, the LAN9118 with [`config::MAC`], the
/// embassy-net stack with the static address of [`config`], and its runner
/// task. Panics (with a log line) if the Ethernet controller is missing.
pub fn init_network(spawner: &Spawner) -> Stack<'static> {
    uart::init();
    let Some(core) = cortex_m::Peripherals::take() else {
        panic!("core peripherals taken twice");
    };
    time_driver::init(core.SYST);

    static DEVICE: StaticCell<Lan9118<'static>> = StaticCell::new();
    let device = match Lan9118::new(ETHERNET, &ETHERNET_STATE, config::MAC) {
        Ok(d) => DEVICE.init(d),
        Err(e) => panic!("LAN9118 at {:#x}: {:?}", ETHERNET_BASE, e),
    };
    info!(
        "LAN9118 id {:#010x}, MAC {:02x?}",
        device.id_rev(),
        config::MAC
    );
    // No RNG on the board: the free-running counter differs per boot.
    let seed = u64::from(device.free_run()) << 32 | u64::from(device.free_run());
    // SAFETY: unmasking the LAN9118's line: its handler and the driver share
    // only `ETHERNET_STATE` (atomics) and the chip's INT_EN, which the driver
    // changes in critical sections.
    unsafe { NVIC::unmask(Irq(ETHERNET_IRQ)) };

    static RESOURCES: StaticCell<StackResources<{ config::SOCKETS }>> = StaticCell::new();
    let (stack, runner) = embassy_net::new(
        device,
        config::net_config(),
        RESOURCES.init(StackResources::new()),
        seed,
    );
    match net_task(runner) {
        Ok(token) => spawner.spawn(token),
        Err(_) => panic!("net task spawned twice"),
    }
    stack
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    cortex_m::interrupt::disable();
    let _ = writeln!(uart::Uart, "PANIC {info}");
    loop {
        cortex_m::asm::wfi();
    }
}

#[cortex_m_rt::exception]
unsafe fn HardFault(frame: &cortex_m_rt::ExceptionFrame) -> ! {
    let _ = writeln!(uart::Uart, "HARD FAULT at pc {:#010x}", frame.pc());
    loop {
        cortex_m::asm::wfi();
    }
}
