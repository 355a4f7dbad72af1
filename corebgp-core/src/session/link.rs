//! What a connection's state machine hands the adapter: bytes to send,
//! requests (dial, close) and events. One `Link` per TCP connection.

use heapless::Deque;

use super::time::Instant;
use crate::driver::SHUTDOWN_LINGER;
use crate::wire::{EncodeError, MAX_MESSAGE_LEN, Notification, NotificationCode};

/// Room for the session's own messages (OPEN, KEEPALIVE, NOTIFICATION)
/// waiting to be written. UPDATEs never pass through it: they are written
/// straight from the caller's buffer.
pub const TX_CAPACITY: usize = 512;
/// Events a peer buffers before the oldest are dropped.
pub const EVENT_CAPACITY: usize = 16;

/// Which of a peer's connections: the one we dialled or the one we accepted
/// (RFC 4271 §6.8 keeps one of each at most).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Direction {
    /// We initiated the TCP connection.
    Outbound,
    /// The peer initiated it.
    Inbound,
}

/// The six RFC 4271 §8.2.2 states, as plain values (for events and queries).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum StateKind {
    /// Idle.
    Idle,
    /// Connect.
    Connect,
    /// Active.
    Active,
    /// OpenSent.
    OpenSent,
    /// OpenConfirm.
    OpenConfirm,
    /// Established.
    Established,
}

/// Why a connection went back to Idle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum DownReason {
    /// We sent a NOTIFICATION with this code (hold timer expiry included).
    NotificationSent(NotificationCode),
    /// The peer sent a NOTIFICATION with this code.
    NotificationReceived(NotificationCode),
    /// The TCP connection failed or was closed by the peer.
    TransportClosed,
    /// The dial failed.
    ConnectFailed,
    /// Stopped by the operator (ManualStop), with the Cease subcode sent if
    /// a NOTIFICATION was due.
    Stopped,
    /// Closed by collision resolution (RFC 4271 §6.8).
    Collision,
    /// An error before our OPEN was sent (DelayOpen): the connection was
    /// dropped without a NOTIFICATION (RFC 4271 §8.2.2 Connect/Active); the
    /// code is the one a NOTIFICATION would have carried.
    Dropped(NotificationCode),
}

/// One line for logs, e.g. `NOTIFICATION sent: Hold Timer Expired (4/0)`
/// (cheaper in flash than the derived `Debug`, which formats every nested
/// enum by name).
impl core::fmt::Display for DownReason {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::NotificationSent(c) => write!(f, "NOTIFICATION sent: {c}"),
            Self::NotificationReceived(c) => write!(f, "NOTIFICATION received: {c}"),
            Self::TransportClosed => f.write_str("transport closed"),
            Self::ConnectFailed => f.write_str("connect failed"),
            Self::Stopped => f.write_str("stopped"),
            Self::Collision => f.write_str("collision"),
            Self::Dropped(c) => write!(f, "dropped without NOTIFICATION: {c}"),
        }
    }
}

impl DownReason {
    /// Whether this counts for peer oscillation damping: a NOTIFICATION
    /// other than Cease, sent or received (CoreBGP's rule).
    pub fn damps(&self) -> bool {
        match self {
            Self::NotificationSent(c) | Self::NotificationReceived(c) | Self::Dropped(c) => {
                !c.is_cease()
            }
            _ => false,
        }
    }
}

/// Something that happened, for the plugin and for logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum Event {
    /// A connection changed state.
    StateChanged {
        /// Which connection.
        direction: Direction,
        /// Previous state.
        from: StateKind,
        /// New state.
        to: StateKind,
    },
    /// A connection reached Established; the negotiated parameters are
    /// available from the session.
    Established {
        /// Which connection.
        direction: Direction,
    },
    /// An Established connection went down (CoreBGP's `OnClose`).
    Down {
        /// Which connection.
        direction: Direction,
        /// Why.
        reason: DownReason,
    },
    /// We sent a NOTIFICATION.
    NotificationSent {
        /// Which connection.
        direction: Direction,
        /// Its code and subcode.
        code: NotificationCode,
    },
    /// The peer sent a NOTIFICATION (its data is handed over with the message).
    NotificationReceived {
        /// Which connection.
        direction: Direction,
        /// Its code and subcode.
        code: NotificationCode,
    },
    /// Collision resolution closed a connection (RFC 4271 §6.8).
    CollisionResolved {
        /// The connection that was closed.
        closed: Direction,
    },
    /// Damping holds the peer down until this instant.
    Damped {
        /// End of the hold-down.
        until: Instant,
    },
    /// An inbound connection was refused (hold-down, duplicate, or the
    /// session is already Established).
    InboundRejected,
    /// A ROUTE-REFRESH arrived for a family we did not negotiate, or with
    /// an unknown subtype, and was ignored (RFC 2918 §4, RFC 7313 §5).
    RouteRefreshIgnored,
}

/// A bounded event queue; the oldest event is dropped when full.
#[derive(Debug, Default)]
pub struct Events {
    q: Deque<Event, EVENT_CAPACITY>,
    dropped: u32,
    /// Why each connection (by [`Direction`]) went back to Idle since the
    /// peer last looked: recorded at the transition, so that the peer's
    /// restart and damping bookkeeping need not compare states before and
    /// after every input. Not events: the queue may drop those.
    pub(crate) went_down: [Option<DownReason>; 2],
}

impl Events {
    /// An empty queue.
    pub const fn new() -> Self {
        Self {
            q: Deque::new(),
            dropped: 0,
            went_down: [None; 2],
        }
    }
    /// Appends an event.
    pub fn push(&mut self, e: Event) {
        if self.q.is_full() {
            let _ = self.q.pop_front();
            self.dropped = self.dropped.saturating_add(1);
        }
        let _ = self.q.push_back(e);
    }
    /// Takes the oldest event.
    #[cfg_attr(not(target_os = "none"), inline)]
    pub fn pop(&mut self) -> Option<Event> {
        self.q.pop_front()
    }
    /// Events dropped because nobody polled.
    pub fn dropped(&self) -> u32 {
        self.dropped
    }
}

/// One connection's outputs: the session's own bytes to send, and whether
/// the adapter should dial or close.
#[derive(Debug)]
pub struct Link {
    buf: [u8; TX_CAPACITY],
    start: usize,
    end: usize,
    pub(crate) dial: bool,
    pub(crate) close: bool,
    pub(crate) keepalive_pending: bool,
    /// Since when our writes make no progress (RFC 9687).
    pub(crate) blocked_since: Option<Instant>,
    /// The adapter is handing a received message to the plugin: the hold
    /// timer waits (the peer is not at fault for our slowness).
    pub(crate) busy: bool,
}

impl Default for Link {
    fn default() -> Self {
        Self::new()
    }
}

impl Link {
    /// An idle link.
    pub const fn new() -> Self {
        Self {
            buf: [0; TX_CAPACITY],
            start: 0,
            end: 0,
            dial: false,
            close: false,
            keepalive_pending: false,
            blocked_since: None,
            busy: false,
        }
    }

    /// Bytes waiting to be written to the transport.
    pub fn pending(&self) -> &[u8] {
        self.buf.get(self.start..self.end).unwrap_or(&[])
    }

    /// Records that `n` pending bytes were written.
    pub fn consume(&mut self, n: usize) {
        self.start = (self.start + n).min(self.end);
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
            self.keepalive_pending = false;
        }
    }

    /// Takes the "dial now" request.
    pub fn take_dial(&mut self) -> bool {
        core::mem::take(&mut self.dial)
    }

    /// Whether the adapter should close the transport once [`Link::pending`]
    /// is written.
    pub fn wants_close(&self) -> bool {
        self.close
    }

    /// Forgets everything (the transport is gone).
    pub fn reset(&mut self) {
        *self = Self::new();
    }

    /// [`Link::reset`] field by field, the buffer left as it is (only
    /// `start..end` of it is ever read): where the session resets a link,
    /// building a fresh one to copy in cost a 512-byte clear and copy.
    pub(crate) fn clear(&mut self) {
        // Destructured: a new field is a compile error here until it is
        // cleared too.
        let Self {
            buf: _,
            start,
            end,
            dial,
            close,
            keepalive_pending,
            blocked_since,
            busy,
        } = self;
        *start = 0;
        *end = 0;
        *dial = false;
        *close = false;
        *keepalive_pending = false;
        *blocked_since = None;
        *busy = false;
    }

    /// When the adapter closes this connection without what is left to
    /// write, if the session asked to close it and its writes have not
    /// moved since: [`SHUTDOWN_LINGER`] after they stopped ([`Instant::NEVER`]
    /// otherwise). A peer that reads nothing — the very case of RFC 9687,
    /// whose 8/0 then waits behind a full socket buffer — must not keep the
    /// connection, and the session with it, for ever: the local system
    /// closes it rather than rely on the remote (RFC 9687).
    pub(crate) fn abandon_at(&self) -> Instant {
        match self.blocked_since {
            Some(since) if self.close => since + SHUTDOWN_LINGER,
            _ => Instant::NEVER,
        }
    }

    /// Records that writes are blocked (`Some(since)`) or moving (`None`).
    pub fn set_blocked(&mut self, since: Option<Instant>) {
        self.blocked_since = since;
    }

    fn spare(&mut self) -> &mut [u8] {
        if self.start > 0 {
            let (s, e) = (self.start, self.end);
            self.buf.copy_within(s..e, 0);
            self.end -= s;
            self.start = 0;
        }
        let end = self.end;
        self.buf.get_mut(end..).unwrap_or(&mut [])
    }

    pub(crate) fn push_with(
        &mut self,
        f: impl FnOnce(&mut [u8]) -> Result<usize, EncodeError>,
    ) -> Result<(), EncodeError> {
        let n = f(self.spare())?;
        self.end += n;
        Ok(())
    }

    pub(crate) fn push_keepalive(&mut self) {
        // A KEEPALIVE still queued says all another would.
        if self.keepalive_pending {
            return;
        }
        if self.push_with(crate::wire::encode_keepalive).is_ok() {
            self.keepalive_pending = true;
        }
    }

    /// Queues a NOTIFICATION, its data cut to fit (RFC 8654 §4 allows
    /// truncating data; a NOTIFICATION is never dropped for its size).
    pub(crate) fn push_notification(&mut self, n: &Notification<'_>) {
        let _ = self.push_with(|b| {
            let room = b.len().min(MAX_MESSAGE_LEN);
            n.encode_with_max(b, room)
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::CeaseSubcode;
    use std::string::ToString;

    #[test]
    fn down_reason_display_is_one_readable_line() {
        let cases = [
            (
                DownReason::NotificationSent(NotificationCode::HOLD_TIMER_EXPIRED),
                "NOTIFICATION sent: Hold Timer Expired (4/0)",
            ),
            (
                DownReason::NotificationReceived(NotificationCode::Cease(
                    CeaseSubcode::AdministrativeShutdown,
                )),
                "NOTIFICATION received: Cease (6/2)",
            ),
            (DownReason::TransportClosed, "transport closed"),
            (DownReason::ConnectFailed, "connect failed"),
            (DownReason::Stopped, "stopped"),
            (DownReason::Collision, "collision"),
            (
                DownReason::Dropped(NotificationCode::HOLD_TIMER_EXPIRED),
                "dropped without NOTIFICATION: Hold Timer Expired (4/0)",
            ),
        ];
        for (reason, text) in cases {
            assert_eq!(reason.to_string(), text);
        }
    }
}
