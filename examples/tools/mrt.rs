//! MRT output (RFC 6396): BGP4MP_ET records, the format RouteViews and RIPE
//! RIS archive. MRT is a header and a payload per record; the payload is
//! the received BGP message as it came, so there is nothing here a crate
//! would do better than these few writes.
//!
//! Rotation: with an interval, records go to a hidden `.NAME.partial` file
//! which is renamed to `NAME` (a UTC timestamp inserted before the
//! extension, RouteViews style) once the interval is over, so a reader of
//! the directory never sees a half-written file. Without an interval the
//! file is written in place (as `tcpdump -w` does) and flushed every
//! second.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// RFC 6396 §4.4: BGP4MP with microsecond timestamps (BGP4MP_ET).
const BGP4MP_ET: u16 = 17;
/// RFC 6396 §4.4.2: BGP4MP_MESSAGE (2-octet AS numbers).
const MESSAGE: u16 = 1;
/// RFC 6396 §4.4.3: BGP4MP_MESSAGE_AS4.
const MESSAGE_AS4: u16 = 4;
/// RFC 6396 §4.4.4: BGP4MP_STATE_CHANGE_AS4.
const STATE_CHANGE_AS4: u16 = 5;
/// RFC 6793: the AS put where a 4-octet AS does not fit.
const AS_TRANS: u32 = 23456;

/// Who a record is about.
#[derive(Debug, Clone, Copy)]
pub struct Endpoints {
    pub peer_as: u32,
    pub local_as: u32,
    pub peer_ip: IpAddr,
    pub local_ip: IpAddr,
}

/// An open MRT output.
pub struct MrtWriter {
    template: PathBuf,
    rotate: Option<Duration>,
    file: Option<Current>,
    buf: Vec<u8>,
}

struct Current {
    w: BufWriter<File>,
    /// Where it is being written.
    writing: PathBuf,
    /// Where it goes when complete (the same path without rotation).
    done: PathBuf,
    /// The end of its interval (rotation only).
    until: Option<SystemTime>,
}

impl MrtWriter {
    /// Opens (creates or truncates) the output now, so that an unwritable
    /// path fails at start-up.
    pub fn open(template: &Path, rotate: Option<Duration>) -> std::io::Result<Self> {
        let mut w = Self {
            template: template.to_path_buf(),
            rotate,
            file: None,
            buf: Vec::with_capacity(4096 + 64),
        };
        w.ensure(SystemTime::now())?;
        Ok(w)
    }

    /// The file of the interval holding `now`, rotating if the last is over.
    fn ensure(&mut self, now: SystemTime) -> std::io::Result<&mut Current> {
        if let Some(c) = &self.file
            && c.until.is_some_and(|u| now >= u)
        {
            self.complete()?;
        }
        if self.file.is_none() {
            let (writing, done, until) = match self.rotate {
                None => (self.template.clone(), self.template.clone(), None),
                Some(every) => {
                    let secs = every.as_secs().max(1);
                    let t = now.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs();
                    let start = t - t % secs;
                    let done = rotated_name(&self.template, start, secs);
                    let name = done
                        .file_name()
                        .map(|n| n.to_string_lossy().into_owned())
                        .unwrap_or_default();
                    let writing = done.with_file_name(format!(".{name}.partial"));
                    // An interval ending past what SystemTime holds
                    // (`--mrt-rotate 18446744073709551615`) never ends.
                    let until = start
                        .checked_add(secs)
                        .and_then(|end| UNIX_EPOCH.checked_add(Duration::from_secs(end)));
                    (writing, done, until)
                }
            };
            let f = File::create(&writing).map_err(|e| {
                std::io::Error::new(
                    e.kind(),
                    format!("cannot create {}: {e}", writing.display()),
                )
            })?;
            self.file = Some(Current {
                w: BufWriter::with_capacity(256 * 1024, f),
                writing,
                done,
                until,
            });
        }
        Ok(self.file.as_mut().expect("just set"))
    }

    /// Flushes the current file and, when rotating, renames it into place.
    fn complete(&mut self) -> std::io::Result<()> {
        if let Some(mut c) = self.file.take() {
            c.w.flush()?;
            c.w.get_ref().sync_data()?;
            if c.writing != c.done {
                std::fs::rename(&c.writing, &c.done)?;
            }
        }
        Ok(())
    }

    /// Rotates if due, and flushes what is buffered (called every second).
    pub fn tick(&mut self, now: SystemTime) -> std::io::Result<()> {
        if self
            .file
            .as_ref()
            .is_some_and(|c| c.until.is_some_and(|u| now >= u))
        {
            self.complete()?;
            self.ensure(now)?;
        }
        if let Some(c) = &mut self.file {
            c.w.flush()?;
        }
        Ok(())
    }

    /// Ends the output: everything written and the last file in place.
    pub fn finish(&mut self) -> std::io::Result<()> {
        self.complete()
    }

    /// A received BGP message (header included), RFC 6396 §4.4.3 (or
    /// §4.4.2 when the session uses 2-octet AS numbers, so that readers
    /// decode its AS_PATH with the right width).
    pub fn message(
        &mut self,
        at: SystemTime,
        e: &Endpoints,
        four_octet_as: bool,
        msg: &[u8],
    ) -> std::io::Result<()> {
        self.buf.clear();
        if four_octet_as {
            self.buf.extend_from_slice(&e.peer_as.to_be_bytes());
            self.buf.extend_from_slice(&e.local_as.to_be_bytes());
        } else {
            self.buf.extend_from_slice(&as2(e.peer_as).to_be_bytes());
            self.buf.extend_from_slice(&as2(e.local_as).to_be_bytes());
        }
        self.addresses(e);
        self.buf.extend_from_slice(msg);
        let sub = if four_octet_as { MESSAGE_AS4 } else { MESSAGE };
        self.record(at, sub)
    }

    /// A state change, RFC 6396 §4.4.4 (states numbered as in §4.4.1).
    pub fn state_change(
        &mut self,
        at: SystemTime,
        e: &Endpoints,
        old: u16,
        new: u16,
    ) -> std::io::Result<()> {
        self.buf.clear();
        self.buf.extend_from_slice(&e.peer_as.to_be_bytes());
        self.buf.extend_from_slice(&e.local_as.to_be_bytes());
        self.addresses(e);
        self.buf.extend_from_slice(&old.to_be_bytes());
        self.buf.extend_from_slice(&new.to_be_bytes());
        self.record(at, STATE_CHANGE_AS4)
    }

    /// Interface index (0: unknown), AFI, peer and local addresses.
    fn addresses(&mut self, e: &Endpoints) {
        self.buf.extend_from_slice(&0u16.to_be_bytes());
        // Both addresses are of the peer's family; an unknown local address
        // of the other family is written as the unspecified one.
        match e.peer_ip {
            IpAddr::V4(p) => {
                self.buf.extend_from_slice(&1u16.to_be_bytes());
                self.buf.extend_from_slice(&p.octets());
                let l = match e.local_ip {
                    IpAddr::V4(l) => l.octets(),
                    IpAddr::V6(_) => [0; 4],
                };
                self.buf.extend_from_slice(&l);
            }
            IpAddr::V6(p) => {
                self.buf.extend_from_slice(&2u16.to_be_bytes());
                self.buf.extend_from_slice(&p.octets());
                let l = match e.local_ip {
                    IpAddr::V6(l) => l.octets(),
                    IpAddr::V4(l) => l.to_ipv6_mapped().octets(),
                };
                self.buf.extend_from_slice(&l);
            }
        }
    }

    /// The common header with the microsecond field of the _ET types
    /// (RFC 6396 §3: it counts in the length).
    fn record(&mut self, at: SystemTime, subtype: u16) -> std::io::Result<()> {
        let d = at.duration_since(UNIX_EPOCH).unwrap_or_default();
        let mut head = [0u8; 16];
        head[..4].copy_from_slice(&(d.as_secs() as u32).to_be_bytes());
        head[4..6].copy_from_slice(&BGP4MP_ET.to_be_bytes());
        head[6..8].copy_from_slice(&subtype.to_be_bytes());
        head[8..12].copy_from_slice(&((self.buf.len() + 4) as u32).to_be_bytes());
        head[12..].copy_from_slice(&d.subsec_micros().to_be_bytes());
        let c = self.ensure(at)?;
        c.w.write_all(&head)?;
        // The payload was built in self.buf; borrow it after ensure().
        let buf = std::mem::take(&mut self.buf);
        let r = self.file.as_mut().map_or(Ok(()), |c| c.w.write_all(&buf));
        self.buf = buf;
        r
    }
}

fn as2(asn: u32) -> u16 {
    u16::try_from(asn).unwrap_or(AS_TRANS as u16)
}

/// `updates.mrt` → `updates.20261206.2245.mrt` (the interval's UTC start;
/// seconds too when the interval is not whole minutes).
fn rotated_name(template: &Path, start: u64, every: u64) -> PathBuf {
    let t = chrono::DateTime::from_timestamp(start as i64, 0).unwrap_or_default();
    let stamp = if every.is_multiple_of(60) {
        t.format("%Y%m%d.%H%M").to_string()
    } else {
        t.format("%Y%m%d.%H%M%S").to_string()
    };
    let stem = template
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let name = match template.extension() {
        Some(ext) => format!("{stem}.{stamp}.{}", ext.to_string_lossy()),
        None => format!("{stem}.{stamp}"),
    };
    template.with_file_name(name)
}
