//! STAND-IN SESSION, to be replaced by corebgp-core's shared driver.
//!
//! corebgp-core's driver (sans-IO typestate FSM + async loop + plugin) does
//! not exist yet. Until it lands, this minimal OPEN/KEEPALIVE speaker, built
//! only on the core's wire codec, keeps a session up so the firmware links
//! and runs the adapter end to end. It is deliberately not a BGP
//! implementation: no FSM checks, no collision handling, no UPDATE
//! processing beyond logging. When the driver lands, `bgp.rs` calls
//! `corebgp_core::driver::run(link.reader, link.writer, link.msg_buf,
//! &EmbassyClock, &mut plugin)` instead of [`run`], and the plugin announces
//! the prefix (UPDATE builder) and logs received routes with defmt.

use core::net::Ipv4Addr;

use corebgp_embassy::corebgp_core::wire::{
    Afi, AfiSafi, Capability, Framer, HEADER_LEN, HeaderError, KEEPALIVE, MAX_MESSAGE_LEN, Message,
    Notification, NotificationCode, OpenBuilder, Safi,
};
use corebgp_embassy::embassy_net::tcp::Error as TcpError;
use corebgp_embassy::{Clock, Link};
use defmt::{info, warn};
use embassy_futures::select::{Either, select};
use embedded_io_async::Write;

/// Local identity.
pub struct Local {
    /// AS number.
    pub asn: u32,
    /// BGP Identifier.
    pub bgp_id: Ipv4Addr,
    /// Proposed hold time (s).
    pub hold_time: u16,
    /// Expected peer AS.
    pub peer_as: u32,
}

/// Why the stand-in session ended.
#[derive(Debug, defmt::Format)]
pub enum End {
    /// Socket error.
    Io(TcpError),
    /// The peer closed.
    Eof,
    /// Framing error (the real session sends the NOTIFICATION).
    Header(HeaderError),
    /// A message failed to decode, or came in the wrong state.
    Protocol,
    /// The peer sent a NOTIFICATION.
    Notification(NotificationCode),
    /// Hold timer expired (a NOTIFICATION was sent).
    HoldTimerExpired,
}

async fn send(w: &mut impl Write<Error = TcpError>, bytes: &[u8]) -> Result<(), End> {
    w.write_all(bytes).await.map_err(End::Io)?;
    w.flush().await.map_err(End::Io)
}

/// Runs the stand-in session on a connection lent by the adapter.
pub async fn run(link: Link<'_>, clock: &impl Clock, me: &Local) -> Result<(), End> {
    let Link {
        mut reader,
        mut writer,
        msg_buf,
        remote,
        ..
    } = link;
    let mut framer = Framer::new(msg_buf);
    let caps = [
        Capability::MultiProtocol(AfiSafi::new(Afi::Ipv4, Safi::Unicast)),
        Capability::FourOctetAs(me.asn),
    ];
    let open = OpenBuilder {
        my_as: OpenBuilder::my_as_field(me.asn),
        hold_time: me.hold_time,
        bgp_id: me.bgp_id,
        capabilities: &caps,
        force_extended_parameters: false,
    };
    let mut out = [0u8; 64];
    let n = open.encode(&mut out).map_err(|_| End::Protocol)?;
    send(&mut writer, out.get(..n).unwrap_or(&[])).await?;

    // Until the peer's OPEN: a large hold time (RFC 4271 suggests 4 min).
    let mut hold_ms: u64 = 240_000;
    let mut hold_deadline = clock.now_ms() + hold_ms;
    let mut ka_deadline = u64::MAX;
    let mut established = false;
    loop {
        while let Some(msg) = framer.next_message() {
            let msg = msg.map_err(End::Header)?;
            hold_deadline = clock.now_ms() + hold_ms;
            match Message::parse(msg, MAX_MESSAGE_LEN) {
                Ok(Message::Open(o)) if !established => {
                    info!("OPEN from {}: AS {} hold {}", remote, o.asn(), o.hold_time);
                    if o.asn() != me.peer_as {
                        warn!("unexpected peer AS {}", o.asn());
                        return Err(End::Protocol);
                    }
                    let hold_s = u64::from(me.hold_time.min(o.hold_time));
                    hold_ms = if hold_s == 0 {
                        u64::MAX / 4
                    } else {
                        hold_s * 1000
                    };
                    ka_deadline = if hold_s == 0 {
                        u64::MAX
                    } else {
                        clock.now_ms() + hold_ms / 3
                    };
                    hold_deadline = clock.now_ms() + hold_ms;
                    send(&mut writer, &KEEPALIVE).await?;
                }
                Ok(Message::Keepalive) => {
                    if !established {
                        info!("session with {} established", remote);
                        established = true;
                    }
                }
                Ok(Message::Update(u)) if established => {
                    // Route logging comes with the core's UPDATE decoder.
                    info!(
                        "UPDATE: {} bytes NLRI, {} bytes withdrawn",
                        u.nlri.len(),
                        u.withdrawn.len()
                    );
                }
                Ok(Message::Notification(n)) => return Err(End::Notification(n.code)),
                _ => return Err(End::Protocol),
            }
        }
        let deadline = hold_deadline.min(ka_deadline);
        match select(
            reader.read(framer.read_buf()),
            clock.sleep_until_ms(deadline),
        )
        .await
        {
            Either::First(Ok(0)) => return Err(End::Eof),
            Either::First(Ok(n)) => framer.commit(n),
            Either::First(Err(e)) => return Err(End::Io(e)),
            Either::Second(()) => {
                let now = clock.now_ms();
                if now >= hold_deadline {
                    let mut buf = [0u8; HEADER_LEN + 2];
                    let n = Notification::new(NotificationCode::HOLD_TIMER_EXPIRED)
                        .encode(&mut buf)
                        .map_err(|_| End::Protocol)?;
                    send(&mut writer, buf.get(..n).unwrap_or(&[])).await?;
                    return Err(End::HoldTimerExpired);
                }
                send(&mut writer, &KEEPALIVE).await?;
                ka_deadline = now + hold_ms / 3;
            }
        }
    }
}
