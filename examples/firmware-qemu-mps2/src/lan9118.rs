//! An [`embassy_net_driver::Driver`] for the SMSC (Microchip) LAN9118 family
//! of Ethernet controllers (LAN9118, LAN9220, LAN9221, ...): MAC and PHY on one
//! chip, reached through a 256-byte register window with programmed-I/O
//! FIFOs.
//!
//! Self-contained: this file depends only on `embassy-net-driver`,
//! `embassy-sync` (for `AtomicWaker`) and `critical-section`; lift it into any
//! firmware with such a chip on its memory bus (32-bit, little-endian). The board supplies the register base
//! ([`Regs::new`]), a `static` [`State`], the MAC address, and an interrupt
//! handler that calls [`State::on_interrupt`].
//!
//! # Design
//! * **Interrupt-driven.** The chip's IRQ line wakes the network task when a
//!   frame arrives (RX status FIFO level, `RSFL`) or the PHY reports a link
//!   change (`PHY_INT`); the handler masks the source it saw and wakes the
//!   task, which re-arms it once the FIFO is empty again. Nothing polls. The
//!   TX path needs no interrupt in practice: a frame goes into the 4.5 KiB TX
//!   data FIFO at once, and the MAC drains it at line rate; if the FIFO is ever
//!   too full, the driver arms the TX-data-available interrupt (`TDFA`) and
//!   waits for it.
//! * **One copy per frame.** Received words are read from the RX data FIFO
//!   straight into the buffer handed to the stack; frames to send are built by
//!   the stack in the TX buffer and written word by word into the TX data
//!   FIFO. The FIFOs are the chip's only data path (it has no DMA), so this is
//!   the minimum.
//! * **Link state** comes from the PHY's Basic Status register, read again
//!   only after a PHY interrupt (energy-on, auto-negotiation complete, link
//!   down), so the stack's frequent `link_state` calls cost no bus cycles.
//! * `unsafe` is confined to the volatile accesses of [`Regs`].
//!
//! Register map and behaviour follow the LAN9118 datasheet (section 5,
//! "System Control and Status Registers"); checked against QEMU's model
//! (`hw/net/lan9118.c`) and Zephyr's `eth_smsc911x` driver.

use core::sync::atomic::{AtomicBool, Ordering};
use core::task::Context;

use embassy_net_driver::{Capabilities, HardwareAddress, LinkState};
use embassy_sync::waitqueue::AtomicWaker;

/// Largest Ethernet frame handled, without the FCS (1500-byte payload).
pub const MAX_FRAME: usize = 1514;

// System control and status registers (byte offsets).
const RX_DATA_FIFO: usize = 0x00;
const TX_DATA_FIFO: usize = 0x20;
const RX_STATUS_FIFO: usize = 0x40;
const ID_REV: usize = 0x50;
const IRQ_CFG: usize = 0x54;
const INT_STS: usize = 0x58;
const INT_EN: usize = 0x5c;
const BYTE_TEST: usize = 0x64;
const FIFO_INT: usize = 0x68;
const RX_CFG: usize = 0x6c;
const TX_CFG: usize = 0x70;
const HW_CFG: usize = 0x74;
const RX_FIFO_INF: usize = 0x7c;
const TX_FIFO_INF: usize = 0x80;
const PMT_CTRL: usize = 0x84;
const FREE_RUN: usize = 0x9c;
const MAC_CSR_CMD: usize = 0xa4;
const MAC_CSR_DATA: usize = 0xa8;
const AFC_CFG: usize = 0xac;

/// BYTE_TEST reads this on a correctly wired, little-endian bus.
const BYTE_TEST_VALUE: u32 = 0x8765_4321;
const HW_CFG_SRST: u32 = 1 << 0;
const PMT_CTRL_READY: u32 = 1 << 0;
/// IRQ_CFG: enable the IRQ pin, push-pull, active high (the MPS2's NVIC input
/// is active high; QEMU models the pin inverted unless both are set).
const IRQ_CFG_EN_PUSHPULL_HIGH: u32 = (1 << 8) | (1 << 4) | (1 << 0);
/// INT_STS / INT_EN bits.
const INT_RSFL: u32 = 1 << 3;
const INT_TDFA: u32 = 1 << 9;
const INT_PHY: u32 = 1 << 18;
/// TX_CFG: transmitter on; TX status FIFO may overrun (statuses are not read).
const TX_CFG_ON_SAO: u32 = (1 << 1) | (1 << 2);
/// AFC_CFG: the datasheet's recommended flow-control thresholds.
const AFC_CFG_DEFAULT: u32 = 0x006e_3740;
/// RX status word: frame length (with FCS) in bits 29:16; error summary.
const RX_STS_ERROR: u32 = 1 << 15;
/// TX command A: first and last segment of a one-buffer frame.
const TX_CMD_A_FIRST_LAST: u32 = (1 << 13) | (1 << 12);

// MAC CSRs (through MAC_CSR_CMD/DATA).
const MAC_CSR_BUSY: u32 = 1 << 31;
const MAC_CSR_READ: u32 = 1 << 30;
const MAC_CR: u32 = 1;
const MAC_ADDRH: u32 = 2;
const MAC_ADDRL: u32 = 3;
const MAC_MII_ACC: u32 = 6;
const MAC_MII_DATA: u32 = 7;
/// MAC_CR: full duplex, transmitter and receiver on; perfect address
/// filtering (promiscuous off), broadcasts accepted.
const MAC_CR_FDPX_TX_RX: u32 = (1 << 20) | (1 << 3) | (1 << 2);
const MII_BUSY: u32 = 1 << 0;
const MII_WRITE: u32 = 1 << 1;
/// The internal PHY's MII address.
const PHY_ADDR: u32 = 1;

// PHY registers.
const PHY_BCR: u32 = 0;
const PHY_BSR: u32 = 1;
const PHY_ANAR: u32 = 4;
const PHY_ISR: u32 = 29;
const PHY_IMR: u32 = 30;
const BCR_RESET: u32 = 1 << 15;
const BCR_AUTONEG_EN_RESTART: u32 = (1 << 12) | (1 << 9);
/// Advertise 10/100, half and full duplex, IEEE 802.3.
const ANAR_ALL_10_100: u32 = 0x01e1;
const BSR_LINK_UP: u32 = 1 << 2;
/// PHY interrupts: energy on, auto-negotiation complete, link down.
const PHY_INT_LINK_EVENTS: u32 = (1 << 7) | (1 << 6) | (1 << 4);

/// Bound on every busy-wait for the chip (reset, CSR and MII handshakes):
/// far more bus reads than any of them takes.
const SPIN_LIMIT: u32 = 1_000_000;

/// Why the controller did not come up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Error {
    /// BYTE_TEST did not read 0x87654321: no chip at this address, or a bus
    /// with the wrong width or byte order.
    NotFound(u32),
    /// The chip did not leave reset, or a CSR/MII handshake never completed.
    Timeout,
}

/// The chip's register window.
#[derive(Clone, Copy)]
pub struct Regs {
    base: usize,
}

impl Regs {
    /// The register window at `base`.
    ///
    /// # Safety
    /// `base` must be the address of a LAN9118-family register window that
    /// nothing else in the program accesses: the methods of `Regs` do
    /// volatile reads and writes at `base + 0x00..0x100`.
    pub const unsafe fn new(base: usize) -> Self {
        Self { base }
    }

    fn read(self, offset: usize) -> u32 {
        // SAFETY: `Regs::new`'s contract: base + offset (< 0x100, word
        // aligned) is a device register; volatile, so not elided or merged.
        unsafe { core::ptr::read_volatile((self.base + offset) as *const u32) }
    }

    fn write(self, offset: usize, value: u32) {
        // SAFETY: as in `read`.
        unsafe { core::ptr::write_volatile((self.base + offset) as *mut u32, value) }
    }

    fn wait_clear(self, offset: usize, mask: u32) -> Result<(), Error> {
        for _ in 0..SPIN_LIMIT {
            if self.read(offset) & mask == 0 {
                return Ok(());
            }
        }
        Err(Error::Timeout)
    }

    fn mac_read(self, reg: u32) -> Result<u32, Error> {
        self.write(MAC_CSR_CMD, MAC_CSR_BUSY | MAC_CSR_READ | reg);
        self.wait_clear(MAC_CSR_CMD, MAC_CSR_BUSY)?;
        Ok(self.read(MAC_CSR_DATA))
    }

    fn mac_write(self, reg: u32, value: u32) -> Result<(), Error> {
        self.write(MAC_CSR_DATA, value);
        self.write(MAC_CSR_CMD, MAC_CSR_BUSY | reg);
        self.wait_clear(MAC_CSR_CMD, MAC_CSR_BUSY)
    }

    fn phy_read(self, reg: u32) -> Result<u32, Error> {
        self.mac_write(MAC_MII_ACC, (PHY_ADDR << 11) | (reg << 6) | MII_BUSY)?;
        self.wait_mii()?;
        Ok(self.mac_read(MAC_MII_DATA)? & 0xffff)
    }

    fn phy_write(self, reg: u32, value: u32) -> Result<(), Error> {
        self.mac_write(MAC_MII_DATA, value)?;
        self.mac_write(
            MAC_MII_ACC,
            (PHY_ADDR << 11) | (reg << 6) | MII_WRITE | MII_BUSY,
        )?;
        self.wait_mii()
    }

    fn wait_mii(self) -> Result<(), Error> {
        for _ in 0..SPIN_LIMIT {
            if self.mac_read(MAC_MII_ACC)? & MII_BUSY == 0 {
                return Ok(());
            }
        }
        Err(Error::Timeout)
    }

    /// Frames waiting in the RX status FIFO.
    fn rx_frames(self) -> u32 {
        (self.read(RX_FIFO_INF) >> 16) & 0xff
    }

    /// Free bytes in the TX data FIFO.
    fn tx_free(self) -> usize {
        (self.read(TX_FIFO_INF) & 0xffff) as usize
    }

    /// Masks or unmasks interrupt sources; the caller holds off the handler.
    fn set_int_enabled(self, mask: u32, on: bool) {
        let en = self.read(INT_EN);
        self.write(INT_EN, if on { en | mask } else { en & !mask });
    }

    /// Clears the latched `mask` in INT_STS, then unmasks it.
    fn arm(self, mask: u32) {
        critical_section::with(|_| {
            self.write(INT_STS, mask);
            self.set_int_enabled(mask, true);
        });
    }
}

/// What the interrupt handler shares with the driver: one `static` per chip.
pub struct State {
    rx: AtomicWaker,
    tx: AtomicWaker,
    link: AtomicWaker,
    /// The PHY raised an interrupt: read its status again.
    phy_event: AtomicBool,
}

impl State {
    /// An idle state, for a `static`.
    pub const fn new() -> Self {
        Self {
            rx: AtomicWaker::new(),
            tx: AtomicWaker::new(),
            link: AtomicWaker::new(),
            phy_event: AtomicBool::new(true),
        }
    }

    /// The chip's interrupt handler: call it from the board's vector for the
    /// chip's IRQ line. Masks each pending source it finds (the driver re-arms
    /// it) and wakes the task waiting on it.
    pub fn on_interrupt(&self, regs: Regs) {
        let pending = regs.read(INT_STS) & regs.read(INT_EN);
        if pending == 0 {
            return;
        }
        regs.set_int_enabled(pending, false);
        if pending & INT_RSFL != 0 {
            self.rx.wake();
        }
        if pending & INT_TDFA != 0 {
            self.tx.wake();
        }
        if pending & INT_PHY != 0 {
            self.phy_event.store(true, Ordering::Release);
            self.link.wake();
        }
    }
}

impl Default for State {
    fn default() -> Self {
        Self::new()
    }
}

/// The controller, as an embassy-net driver.
pub struct Lan9118<'s> {
    regs: Regs,
    state: &'s State,
    mac: [u8; 6],
    link: LinkState,
    rx_buf: [u8; MAX_FRAME],
    tx_buf: [u8; MAX_FRAME],
}

impl<'s> Lan9118<'s> {
    /// Resets the chip and brings it up with `mac`: MAC and PHY configured
    /// (auto-negotiation), transmitter and receiver on, interrupts for
    /// received frames and link changes enabled on the IRQ pin. The board
    /// unmasks the IRQ in its interrupt controller afterwards.
    pub fn new(regs: Regs, state: &'s State, mac: [u8; 6]) -> Result<Self, Error> {
        let byte_test = regs.read(BYTE_TEST);
        if byte_test != BYTE_TEST_VALUE {
            return Err(Error::NotFound(byte_test));
        }
        regs.write(HW_CFG, HW_CFG_SRST);
        regs.wait_clear(HW_CFG, HW_CFG_SRST)?;
        // After reset the chip reports READY before its registers may be used.
        let mut ready = false;
        for _ in 0..SPIN_LIMIT {
            if regs.read(PMT_CTRL) & PMT_CTRL_READY != 0 {
                ready = true;
                break;
            }
        }
        if !ready {
            return Err(Error::Timeout);
        }
        regs.write(AFC_CFG, AFC_CFG_DEFAULT);

        let [a, b, c, d, e, f] = mac;
        regs.mac_write(MAC_ADDRL, u32::from_le_bytes([a, b, c, d]))?;
        regs.mac_write(MAC_ADDRH, u32::from_le_bytes([e, f, 0, 0]))?;

        regs.phy_write(PHY_BCR, BCR_RESET)?;
        let mut reset_done = false;
        for _ in 0..SPIN_LIMIT / 1000 {
            if regs.phy_read(PHY_BCR)? & BCR_RESET == 0 {
                reset_done = true;
                break;
            }
        }
        if !reset_done {
            return Err(Error::Timeout);
        }
        regs.phy_write(PHY_ANAR, ANAR_ALL_10_100)?;
        regs.phy_write(PHY_BCR, BCR_AUTONEG_EN_RESTART)?;
        regs.phy_write(PHY_IMR, PHY_INT_LINK_EVENTS)?;

        // RX: no offset, 4-byte end alignment; the RX status level interrupt
        // fires for the first frame (FIFO_INT's RX status level 0).
        regs.write(RX_CFG, 0);
        regs.write(FIFO_INT, regs.read(FIFO_INT) & !0xff);
        regs.write(TX_CFG, TX_CFG_ON_SAO);
        regs.mac_write(MAC_CR, MAC_CR_FDPX_TX_RX)?;

        regs.write(INT_EN, 0);
        regs.write(INT_STS, u32::MAX);
        regs.write(IRQ_CFG, IRQ_CFG_EN_PUSHPULL_HIGH);
        regs.write(INT_EN, INT_RSFL | INT_PHY);

        Ok(Self {
            regs,
            state,
            mac,
            link: LinkState::Down,
            rx_buf: [0; MAX_FRAME],
            tx_buf: [0; MAX_FRAME],
        })
    }

    /// The chip's ID and revision (ID_REV), e.g. 0x0118_0001 for a LAN9118.
    pub fn id_rev(&self) -> u32 {
        self.regs.read(ID_REV)
    }

    /// The chip's free-running 25 MHz counter: differs from boot to boot, a
    /// seed for the stack's port and sequence-number randomisation where the
    /// board has no RNG (not a cryptographic source).
    pub fn free_run(&self) -> u32 {
        self.regs.read(FREE_RUN)
    }

    /// Whether the TX FIFO takes a maximal frame; otherwise arms the
    /// TX-data-available interrupt at that level and registers the waker.
    fn tx_ready(&self, cx: &mut Context) -> bool {
        // The frame plus TX command words A and B.
        const NEEDED: usize = MAX_FRAME + 8;
        self.state.tx.register(cx.waker());
        if self.regs.tx_free() >= NEEDED {
            return true;
        }
        // FIFO_INT bits 31:24: TX data available level, in 64-byte units.
        let level = NEEDED.div_ceil(64) as u32;
        let fifo_int = self.regs.read(FIFO_INT) & 0x00ff_ffff;
        self.regs.write(FIFO_INT, fifo_int | (level << 24));
        self.regs.arm(INT_TDFA);
        self.regs.tx_free() >= NEEDED
    }

    /// Whether a frame waits; otherwise re-arms the RX interrupt and registers
    /// the waker (checking again after arming: a frame that arrived in between
    /// raised no interrupt).
    fn rx_ready(&self, cx: &mut Context) -> bool {
        self.state.rx.register(cx.waker());
        if self.regs.rx_frames() > 0 {
            return true;
        }
        self.regs.arm(INT_RSFL);
        self.regs.rx_frames() > 0
    }

    fn refresh_link(&mut self) {
        // BSR's link bit latches low: the second read is the current state.
        // Reading the PHY's interrupt source register clears it.
        let status = self
            .regs
            .phy_read(PHY_ISR)
            .and_then(|_| self.regs.phy_read(PHY_BSR))
            .and_then(|_| self.regs.phy_read(PHY_BSR));
        self.link = match status {
            Ok(bsr) if bsr & BSR_LINK_UP != 0 => LinkState::Up,
            _ => LinkState::Down,
        };
        self.regs.arm(INT_PHY);
    }
}

/// Receives one frame: pops its status and copies it out of the RX data FIFO.
pub struct RxToken<'d> {
    regs: Regs,
    buf: &'d mut [u8; MAX_FRAME],
}

/// Sends one frame: the stack builds it in the buffer, `consume` writes it to
/// the TX data FIFO.
pub struct TxToken<'d> {
    regs: Regs,
    buf: &'d mut [u8; MAX_FRAME],
}

impl embassy_net_driver::RxToken for RxToken<'_> {
    fn consume<R, F>(self, f: F) -> R
    where
        F: FnOnce(&mut [u8]) -> R,
    {
        let status = self.regs.read(RX_STATUS_FIFO);
        // Length on the wire, FCS included; the FIFO holds it in whole words.
        let wire_len = ((status >> 16) & 0x3fff) as usize;
        let words = wire_len.div_ceil(4);
        let frame_len = wire_len.saturating_sub(4);
        // Errored or oversized frames are drained and handed up empty (the
        // stack ignores a zero-length frame); the FIFO stays in step.
        let keep = if status & RX_STS_ERROR == 0 && frame_len <= MAX_FRAME {
            frame_len
        } else {
            0
        };
        for i in 0..words {
            let word = self.regs.read(RX_DATA_FIFO).to_le_bytes();
            let start = i * 4;
            if start < keep {
                let end = (start + 4).min(keep);
                if let (Some(dst), Some(src)) =
                    (self.buf.get_mut(start..end), word.get(..end - start))
                {
                    dst.copy_from_slice(src);
                }
            }
        }
        f(self.buf.get_mut(..keep).unwrap_or(&mut []))
    }
}

impl embassy_net_driver::TxToken for TxToken<'_> {
    fn consume<R, F>(self, len: usize, f: F) -> R
    where
        F: FnOnce(&mut [u8]) -> R,
    {
        let len = len.min(MAX_FRAME);
        let frame = self.buf.get_mut(..len).unwrap_or(&mut []);
        let result = f(frame);
        // Command A: one buffer, first and last segment, `len` bytes, no
        // offset, 4-byte end alignment. Command B: tag (unused) and length.
        self.regs
            .write(TX_DATA_FIFO, TX_CMD_A_FIRST_LAST | len as u32);
        self.regs.write(TX_DATA_FIFO, len as u32);
        for chunk in self.buf.get(..len).unwrap_or(&[]).chunks(4) {
            let mut word = [0u8; 4];
            if let Some(dst) = word.get_mut(..chunk.len()) {
                dst.copy_from_slice(chunk);
            }
            self.regs.write(TX_DATA_FIFO, u32::from_le_bytes(word));
        }
        result
    }
}

impl embassy_net_driver::Driver for Lan9118<'_> {
    type RxToken<'a>
        = RxToken<'a>
    where
        Self: 'a;
    type TxToken<'a>
        = TxToken<'a>
    where
        Self: 'a;

    fn receive(&mut self, cx: &mut Context) -> Option<(Self::RxToken<'_>, Self::TxToken<'_>)> {
        // A received frame may need an answer (ARP, TCP ACK): take it only when
        // one could be sent.
        if !self.tx_ready(cx) || !self.rx_ready(cx) {
            return None;
        }
        Some((
            RxToken {
                regs: self.regs,
                buf: &mut self.rx_buf,
            },
            TxToken {
                regs: self.regs,
                buf: &mut self.tx_buf,
            },
        ))
    }

    fn transmit(&mut self, cx: &mut Context) -> Option<Self::TxToken<'_>> {
        if !self.tx_ready(cx) {
            return None;
        }
        Some(TxToken {
            regs: self.regs,
            buf: &mut self.tx_buf,
        })
    }

    fn link_state(&mut self, cx: &mut Context) -> LinkState {
        self.state.link.register(cx.waker());
        if self.state.phy_event.swap(false, Ordering::Acquire) {
            self.refresh_link();
        }
        self.link
    }

    fn capabilities(&self) -> Capabilities {
        let mut caps = Capabilities::default();
        caps.max_transmission_unit = MAX_FRAME;
        caps.max_burst_size = Some(1);
        caps
    }

    fn hardware_address(&self) -> HardwareAddress {
        HardwareAddress::Ethernet(self.mac)
    }
}
