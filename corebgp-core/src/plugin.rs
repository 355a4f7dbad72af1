//! The plugin API: CoreBGP's four hooks, in Rust, plus what CoreBGP's users
//! asked for (state changes, NOTIFICATIONs with their reason, ROUTE-REFRESH).
//!
//! Two flavours share one meaning:
//! * [`LocalPlugin`] for single-threaded executors (embassy): its futures
//!   need not be `Send`, so it may hold `Rc` or `RefCell` state;
//! * [`Plugin`] for multi-threaded tokio: every future is `Send`. Every
//!   [`Plugin`] is a [`LocalPlugin`], so the driver is written once.
//!
//! The capability and OPEN hooks ([`OpenHooks`]) are synchronous: they
//! need no I/O, and the state machine calls them in the middle of a
//! transition. Hooks that may do I/O (UPDATE handling, reaching
//! Established) are async; the driver keeps timers and keepalives running
//! while they work (CoreBGP issue #55).
//!
//! UPDATEs go out through an [`crate::outbox::UpdateWriter`], obtainable
//! while the session is Established.

use core::future::Future;

use crate::session::{DownReason, Event, Negotiated, OpenHooks, PeerConfig};
use crate::wire::{Notification, RouteRefresh, UpdateSections};

/// A plugin whose futures need not be `Send` (embassy, current-thread
/// runtimes).
pub trait LocalPlugin: OpenHooks {
    /// The session reached Established (CoreBGP's `OnEstablished`); UPDATEs
    /// may be sent from now on (End-of-RIB, typically, after the table).
    fn on_established(
        &mut self,
        peer: &PeerConfig,
        negotiated: &Negotiated,
    ) -> impl Future<Output = ()>;

    /// An UPDATE arrived (CoreBGP's `UpdateMessageHandler`), borrowed from
    /// the receive buffer: decode what you need with [`crate::update`].
    /// Return a NOTIFICATION to end the session — it may borrow the UPDATE,
    /// as the one an RFC 7606 session reset calls for does (its data is the
    /// offending attribute).
    fn on_update<'m>(
        &mut self,
        peer: &PeerConfig,
        update: UpdateSections<'m>,
    ) -> impl Future<Output = Result<(), Notification<'m>>>;

    /// A ROUTE-REFRESH for a negotiated family (RFC 2918, RFC 7313):
    /// re-advertise that family's routes.
    fn on_route_refresh(&mut self, peer: &PeerConfig, request: &RouteRefresh<'_>) {
        let _ = (peer, request);
    }

    /// The peer sent a NOTIFICATION (its shutdown communication, if any, is
    /// in [`Notification::shutdown_communication`]).
    fn on_notification(&mut self, peer: &PeerConfig, notification: &Notification<'_>) {
        let _ = (peer, notification);
    }

    /// Something happened: a state change, a NOTIFICATION we sent, a
    /// collision resolved, damping.
    fn on_event(&mut self, peer: &PeerConfig, event: &Event) {
        let _ = (peer, event);
    }

    /// The session left Established (CoreBGP's `OnClose`), 1:1 with
    /// [`LocalPlugin::on_established`].
    fn on_close(&mut self, peer: &PeerConfig, reason: DownReason) {
        let _ = (peer, reason);
    }
}

/// A plugin for multi-threaded runtimes: the same hooks as [`LocalPlugin`]
/// with `Send` futures, so the whole session can be spawned on tokio.
pub trait Plugin: OpenHooks + Send {
    /// See [`LocalPlugin::on_established`].
    fn on_established(
        &mut self,
        peer: &PeerConfig,
        negotiated: &Negotiated,
    ) -> impl Future<Output = ()> + Send;

    /// See [`LocalPlugin::on_update`].
    fn on_update<'m>(
        &mut self,
        peer: &PeerConfig,
        update: UpdateSections<'m>,
    ) -> impl Future<Output = Result<(), Notification<'m>>> + Send;

    /// See [`LocalPlugin::on_route_refresh`].
    fn on_route_refresh(&mut self, peer: &PeerConfig, request: &RouteRefresh<'_>) {
        let _ = (peer, request);
    }

    /// See [`LocalPlugin::on_notification`].
    fn on_notification(&mut self, peer: &PeerConfig, notification: &Notification<'_>) {
        let _ = (peer, notification);
    }

    /// See [`LocalPlugin::on_event`].
    fn on_event(&mut self, peer: &PeerConfig, event: &Event) {
        let _ = (peer, event);
    }

    /// See [`LocalPlugin::on_close`].
    fn on_close(&mut self, peer: &PeerConfig, reason: DownReason) {
        let _ = (peer, reason);
    }
}

impl<T: Plugin> LocalPlugin for T {
    fn on_established(
        &mut self,
        peer: &PeerConfig,
        negotiated: &Negotiated,
    ) -> impl Future<Output = ()> {
        <T as Plugin>::on_established(self, peer, negotiated)
    }
    fn on_update<'m>(
        &mut self,
        peer: &PeerConfig,
        update: UpdateSections<'m>,
    ) -> impl Future<Output = Result<(), Notification<'m>>> {
        <T as Plugin>::on_update(self, peer, update)
    }
    fn on_route_refresh(&mut self, peer: &PeerConfig, request: &RouteRefresh<'_>) {
        <T as Plugin>::on_route_refresh(self, peer, request)
    }
    fn on_notification(&mut self, peer: &PeerConfig, notification: &Notification<'_>) {
        <T as Plugin>::on_notification(self, peer, notification)
    }
    fn on_event(&mut self, peer: &PeerConfig, event: &Event) {
        <T as Plugin>::on_event(self, peer, event)
    }
    fn on_close(&mut self, peer: &PeerConfig, reason: DownReason) {
        <T as Plugin>::on_close(self, peer, reason)
    }
}
