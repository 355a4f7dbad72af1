//! UPDATE messages: zero-copy decoding with RFC 7606 verdicts, and a builder.
//!
//! # Decoding, pay for what you use
//!
//! Every layer borrows the message and allocates nothing:
//!
//! * [`UpdateSections::parse`](crate::wire::UpdateSections::parse) splits a
//!   body into its three sections (RFC 4271 §4.3).
//! * [`Attributes`] walks the path attributes as [`RawAttribute`]s (flags,
//!   type, value) without interpreting them; [`Attributes::find`] picks one.
//!   The value views ([`Communities`], [`LargeCommunities`], [`AsPath`], …)
//!   can be built from a raw value alone, so a user who only wants
//!   communities touches nothing else.
//! * [`Ipv4Prefixes`] / [`Ipv6Prefixes`] / [`Prefixes`] iterate NLRI fields,
//!   with or without ADD-PATH identifiers (RFC 7911).
//! * [`Update::parse`] does all of it in one pass: every attribute decoded
//!   and checked, every NLRI field checked, the RFC 7606 verdict computed,
//!   AS4_PATH merged (RFC 6793 §4.2.3), and a typed view returned.
//!
//! ```
//! use corebgp_core::update::{Update, UpdateConfig};
//!
//! // ORIGIN IGP, AS_PATH [65002], NEXT_HOP 192.0.2.2, NLRI 10.0.0.0/8.
//! let body = [
//!     0, 0, 0, 20, 0x40, 1, 1, 0, 0x40, 2, 6, 2, 1, 0, 0, 0xfd, 0xea, 0x40, 3, 4, 192, 0, 2, 2,
//!     8, 10,
//! ];
//! let update = Update::parse(&body, &UpdateConfig::default()).expect("no session reset");
//! assert!(update.treat_as_withdraw().is_none());
//! let path: Vec<u32> = update.as_path().unwrap().asns().collect();
//! assert_eq!(path, [65002]);
//! for nlri in update.nlri() {
//!     assert_eq!(nlri.prefix.to_string(), "10.0.0.0/8");
//! }
//! ```
//!
//! # Building
//!
//! [`UpdateBuilder`] writes a whole UPDATE (header included) into a caller
//! buffer, packing as many prefixes as fit the negotiated maximum message
//! length and reporting how many it took; [`encode_end_of_rib`] writes
//! End-of-RIB markers (RFC 4724 §2).

mod attr;
mod builder;
mod config;
mod error;
mod nlri;
mod parse;
mod values;

pub use attr::{AttrFlags, AttrSet, AttrType, Attributes, RawAttribute};
pub use builder::{BuildError, PathAttributes, UpdateBuilder, encode_end_of_rib};
pub use config::{Families, PeerType, UpdateConfig};
pub use error::{Action, ErrorKind, UpdateError};
pub use nlri::{
    Checked, Ipv4Prefix, Ipv4Prefixes, Ipv6Prefix, Ipv6Prefixes, Nlri, Prefix, PrefixError,
    Prefixes,
};
pub use parse::{Update, end_of_rib};
pub use values::{
    AS_TRANS, Aggregator, Aigp, AsPath, AsSegment, Asns, ClusterList, Communities, Community,
    ExtCommunities, ExtCommunity, Ipv6ExtCommunities, Ipv6ExtCommunity, LargeCommunities,
    LargeCommunity, MpReach, MpUnreach, NextHop, Origin, Segment, SegmentType, Segments,
};
