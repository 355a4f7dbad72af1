//! Board bring-up and configuration shared by the firmware binaries.
//!
//! * `baseline`: board + embassy-net stack (static IPv4), no TCP socket.
//! * `tcp_baseline`: the same + one plain TCP connection (what any networked
//!   firmware carries); the reference for corebgp's own increment.
//! * `bgp`: the same + corebgp (core driver + corebgp-embassy) peering with
//!   the router of [`config`], announcing [`config::ANNOUNCE`]: the BGP
//!   application of `examples/firmware-shared/bgp_app.rs`, shared with the
//!   QEMU MPS2 firmware (a module of the `bgp` binary).
#![no_std]
#![forbid(unsafe_code)]

pub mod config;

use embassy_executor::Spawner;
use embassy_net::{Stack, StackResources};
use embassy_stm32::eth::{self, Ethernet, GenericPhy, PacketQueue, Sma};
use embassy_stm32::peripherals::{self, ETH, ETH_SMA};
use embassy_stm32::rng::{self, Rng};
use embassy_stm32::{Config, bind_interrupts};
use static_cell::StaticCell;

bind_interrupts!(struct Irqs {
    ETH => eth::InterruptHandler;
    RNG => rng::InterruptHandler<peripherals::RNG>;
});

/// The Ethernet MAC + on-board PHY as an embassy-net driver.
pub type Device = Ethernet<'static, ETH, GenericPhy<Sma<'static, ETH_SMA>>>;

/// Socket entries of the stack: the BGP peer(s) plus one spare.
pub const SOCKETS: usize = config::SOCKETS;

#[embassy_executor::task]
async fn net_task(mut runner: embassy_net::Runner<'static, Device>) -> ! {
    runner.run().await
}

fn clocks() -> Config {
    use embassy_stm32::rcc::{
        AHBPrescaler, APBPrescaler, HSIPrescaler, Pll, PllDiv, PllMul, PllPreDiv, PllSource,
        Sysclk, VoltageScale,
    };
    let mut config = Config::default();
    config.rcc.hsi = Some(HSIPrescaler::DIV1);
    config.rcc.csi = true;
    config.rcc.hsi48 = Some(Default::default()); // RNG clock
    config.rcc.pll1 = Some(Pll {
        source: PllSource::HSI,
        prediv: PllPreDiv::DIV4,
        mul: PllMul::MUL50,
        fracn: None,
        divp: Some(PllDiv::DIV2),
        divq: None,
        divr: None,
    });
    config.rcc.sys = Sysclk::PLL1_P; // 400 MHz
    config.rcc.ahb_pre = AHBPrescaler::DIV2; // 200 MHz
    config.rcc.apb1_pre = APBPrescaler::DIV2;
    config.rcc.apb2_pre = APBPrescaler::DIV2;
    config.rcc.apb3_pre = APBPrescaler::DIV2;
    config.rcc.apb4_pre = APBPrescaler::DIV2;
    config.rcc.voltage_scale = VoltageScale::Scale1;
    config
}

/// Clocks, Ethernet (RMII pins of the NUCLEO-H743ZI), the embassy-net stack
/// with the static address of [`config`], and its runner task.
pub fn init_network(spawner: &Spawner) -> Stack<'static> {
    let p = embassy_stm32::init(clocks());

    let mut rng = Rng::new(p.RNG, Irqs);
    let mut seed = [0; 8];
    rng.fill_bytes(&mut seed);
    let seed = u64::from_le_bytes(seed);

    static PACKETS: StaticCell<PacketQueue<4, 4>> = StaticCell::new();
    let device = Ethernet::new(
        PACKETS.init(PacketQueue::<4, 4>::new()),
        p.ETH,
        Irqs,
        p.PA1,  // REF_CLK
        p.PA7,  // CRS_DV
        p.PC4,  // RXD0
        p.PC5,  // RXD1
        p.PG13, // TXD0
        p.PB13, // TXD1
        p.PG11, // TX_EN
        config::MAC,
        p.ETH_SMA,
        p.PA2, // MDIO
        p.PC1, // MDC
    );

    static RESOURCES: StaticCell<StackResources<SOCKETS>> = StaticCell::new();
    let (stack, runner) = embassy_net::new(
        device,
        config::net_config(),
        RESOURCES.init(StackResources::new()),
        seed,
    );
    spawner.spawn(defmt::unwrap!(net_task(runner)));
    stack
}
