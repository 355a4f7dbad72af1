//! A small *blocking* BGP speaker for wire-level interop tests.
//!
//! This is a test stand-in, not a session FSM: it opens (or accepts) one TCP
//! connection on loopback, frames what arrives with corebgp-core's
//! [`Framer`], and sends whatever bytes the test builds with corebgp-core's
//! encoders. An optional background thread sends KEEPALIVEs so that the
//! daemon's hold timer stays happy while the test polls the daemon's CLI.

use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, SocketAddrV4, TcpListener, TcpStream};
use std::os::fd::{FromRawFd, RawFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use corebgp_core::wire::{
    AfiSafi, Capability, Framer, GracefulRestart, HeaderError, KEEPALIVE, List, MAX_MESSAGE_LEN,
    Message, OpenBuilder,
};

/// Why [`Speaker::recv`] returned no message.
#[derive(Debug)]
pub enum RecvError {
    /// Nothing (complete) arrived in time.
    Timeout,
    /// The peer closed the connection (after `buffered` unframed bytes).
    Closed {
        buffered: usize,
    },
    /// The framer rejected a header.
    Header(HeaderError),
    Io(io::Error),
}

/// One BGP connection driven by the test.
pub struct Speaker {
    stream: TcpStream,
    writer: Arc<Mutex<TcpStream>>,
    framer: Framer<Vec<u8>>,
    keepalive: Option<(Arc<AtomicBool>, JoinHandle<()>)>,
    /// Summaries of what was sent and received, for failure messages.
    transcript: Vec<String>,
    started: Instant,
}

impl Speaker {
    fn new(stream: TcpStream) -> Self {
        stream.set_nodelay(true).expect("TCP_NODELAY");
        let writer = Arc::new(Mutex::new(stream.try_clone().expect("clone TcpStream")));
        Self {
            stream,
            writer,
            framer: Framer::new(vec![0u8; MAX_MESSAGE_LEN]),
            keepalive: None,
            transcript: Vec::new(),
            started: Instant::now(),
        }
    }

    /// Connects from `local` (port chosen by the kernel) to `remote`,
    /// retrying refused connections until `timeout` (the daemon may still be
    /// starting). With `md5`, the socket carries a TCP MD5 signature
    /// (RFC 2385) for `remote`'s address.
    pub fn connect(
        local: Ipv4Addr,
        remote: SocketAddrV4,
        md5: Option<&str>,
        timeout: Duration,
    ) -> io::Result<Self> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match connect_from(local, remote, md5, left.max(Duration::from_millis(100))) {
                Ok(s) => return Ok(Self::new(s)),
                Err(e)
                    if e.kind() == io::ErrorKind::ConnectionRefused
                        && Instant::now() < deadline =>
                {
                    std::thread::sleep(Duration::from_millis(100));
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Accepts one connection on `listener` (see [`listen`]) within `timeout`.
    pub fn accept(listener: &TcpListener, timeout: Duration) -> io::Result<Self> {
        listener.set_nonblocking(true)?;
        let deadline = Instant::now() + timeout;
        loop {
            match listener.accept() {
                Ok((s, _)) => {
                    s.set_nonblocking(false)?;
                    return Ok(Self::new(s));
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock && Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(20));
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    return Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        "no connection accepted in time",
                    ));
                }
                Err(e) => return Err(e),
            }
        }
    }

    pub fn local_addr(&self) -> SocketAddrV4 {
        match self.stream.local_addr() {
            Ok(std::net::SocketAddr::V4(a)) => a,
            other => panic!("unexpected local address {other:?}"),
        }
    }

    pub fn peer_addr(&self) -> SocketAddrV4 {
        match self.stream.peer_addr() {
            Ok(std::net::SocketAddr::V4(a)) => a,
            other => panic!("unexpected peer address {other:?}"),
        }
    }

    fn note(&mut self, what: String) {
        let t = self.started.elapsed().as_secs_f32();
        self.transcript.push(format!("{t:7.3}s {what}"));
    }

    /// What was sent and received so far, one line each.
    pub fn transcript(&self) -> String {
        self.transcript.join("\n")
    }

    /// Sends raw bytes (a whole message, or deliberately broken bytes).
    pub fn send(&mut self, bytes: &[u8]) -> io::Result<()> {
        let what = describe(bytes);
        self.note(format!("sent {what}"));
        let mut w = self.writer.lock().unwrap_or_else(|e| e.into_inner());
        w.write_all(bytes)
    }

    /// The sending side, shared with the KEEPALIVE thread: a thread that
    /// sends bulk UPDATEs takes the lock per whole message (or run of whole
    /// messages), so that KEEPALIVEs never land inside one.
    pub fn writer(&self) -> Arc<Mutex<TcpStream>> {
        Arc::clone(&self.writer)
    }

    /// Encodes and sends our OPEN.
    pub fn send_open(&mut self, open: &OpenBuilder<'_>) -> io::Result<()> {
        let mut buf = [0u8; MAX_MESSAGE_LEN];
        let n = open.encode(&mut buf).expect("encode our OPEN");
        self.send(&buf[..n])
    }

    pub fn send_keepalive(&mut self) -> io::Result<()> {
        self.send(&KEEPALIVE)
    }

    /// Sends a KEEPALIVE every `every` from a background thread until the
    /// speaker is dropped or [`Speaker::stop_keepalives`] is called.
    pub fn start_keepalives(&mut self, every: Duration) {
        self.stop_keepalives();
        let stop = Arc::new(AtomicBool::new(false));
        let (w, s) = (Arc::clone(&self.writer), Arc::clone(&stop));
        let h = std::thread::spawn(move || {
            let mut next = Instant::now() + every;
            while !s.load(Ordering::Relaxed) {
                if Instant::now() >= next {
                    let mut w = w.lock().unwrap_or_else(|e| e.into_inner());
                    if w.write_all(&KEEPALIVE).is_err() {
                        return;
                    }
                    next += every;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        });
        self.keepalive = Some((stop, h));
    }

    pub fn stop_keepalives(&mut self) {
        if let Some((stop, h)) = self.keepalive.take() {
            stop.store(true, Ordering::Relaxed);
            let _ = h.join();
        }
    }

    /// Receives the next whole message (header included) within `timeout`.
    pub fn recv(&mut self, timeout: Duration) -> Result<Vec<u8>, RecvError> {
        let deadline = Instant::now() + timeout;
        loop {
            match self.framer.next_message() {
                Some(Ok(m)) => {
                    let m = m.to_vec();
                    self.note(format!("received {}", describe(&m)));
                    return Ok(m);
                }
                Some(Err(e)) => {
                    self.note(format!("framer error: {e}"));
                    return Err(RecvError::Header(e));
                }
                None => {}
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(RecvError::Timeout);
            }
            self.stream
                .set_read_timeout(Some(left))
                .map_err(RecvError::Io)?;
            let buf = self.framer.read_buf();
            if buf.is_empty() {
                return Err(RecvError::Io(io::Error::other("framer buffer full")));
            }
            match self.stream.read(buf) {
                Ok(0) => {
                    let buffered = self.framer.buffered();
                    self.note(format!(
                        "connection closed by peer ({buffered} bytes unframed)"
                    ));
                    return Err(RecvError::Closed { buffered });
                }
                Ok(n) => self.framer.commit(n),
                // A read with SO_RCVTIMEO is not restarted after a signal
                // handler runs (signal(7)), and the test process has them
                // (tokio's SIGCHLD handling for daemons of other tests).
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock
                            | io::ErrorKind::TimedOut
                            | io::ErrorKind::Interrupted
                    ) => {}
                Err(e) => {
                    self.note(format!("read error: {e}"));
                    return Err(RecvError::Io(e));
                }
            }
        }
    }

    /// Like [`Speaker::recv`] but panics (with the transcript and `context`)
    /// if no message arrives.
    pub fn expect_message(
        &mut self,
        timeout: Duration,
        what: &str,
        context: &dyn Fn() -> String,
    ) -> Vec<u8> {
        match self.recv(timeout) {
            Ok(m) => m,
            Err(e) => panic!(
                "expected {what}, got {e:?}\n--- our transcript:\n{}\n{}",
                self.transcript(),
                context()
            ),
        }
    }

    /// Receives messages until `pred` returns `Some`, skipping the others;
    /// panics (with transcript and `context`) on timeout or error.
    pub fn recv_until<T>(
        &mut self,
        timeout: Duration,
        what: &str,
        context: &dyn Fn() -> String,
        mut pred: impl FnMut(&[u8]) -> Option<T>,
    ) -> T {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let m = self.expect_message(left, what, context);
            if let Some(v) = pred(&m) {
                return v;
            }
        }
    }

    /// [`Speaker::handshake`] as a router peering with a collector: AS
    /// `asn`, identifier 10.9.9.9, `families`, the 4-octet AS capability
    /// (corebgp refuses a peer without it: 2/7) and Graceful Restart with no
    /// families (what makes a speaker send End-of-RIB).
    pub fn handshake_as_router(
        &mut self,
        asn: u32,
        families: &[AfiSafi],
        hold: u16,
        timeout: Duration,
        context: &dyn Fn() -> String,
    ) -> Vec<u8> {
        let mut caps: Vec<Capability<'_>> = families
            .iter()
            .map(|&f| Capability::MultiProtocol(f))
            .collect();
        caps.push(Capability::FourOctetAs(asn));
        caps.push(Capability::GracefulRestart(GracefulRestart {
            restart_state: false,
            notification: false,
            restart_time: 0,
            families: List::Items(&[]),
        }));
        let open = OpenBuilder {
            my_as: OpenBuilder::my_as_field(asn),
            hold_time: hold,
            bgp_id: Ipv4Addr::new(10, 9, 9, 9),
            capabilities: &caps,
            force_extended_parameters: false,
        };
        self.handshake(&open, timeout, context)
    }

    /// Sends our OPEN, waits for the peer's OPEN (returned, whole message),
    /// sends KEEPALIVE and waits for the peer's KEEPALIVE. Panics with the
    /// transcript and `context` on anything else (e.g. a NOTIFICATION).
    pub fn handshake(
        &mut self,
        open: &OpenBuilder<'_>,
        timeout: Duration,
        context: &dyn Fn() -> String,
    ) -> Vec<u8> {
        self.send_open(open)
            .unwrap_or_else(|e| panic!("sending OPEN: {e}\n{}", context()));
        let theirs = self.expect_message(timeout, "the peer's OPEN", context);
        match parse(&theirs) {
            Message::Open(_) => {}
            other => panic!(
                "expected OPEN, got {other:?}\n{}\n{}",
                self.transcript(),
                context()
            ),
        }
        self.send_keepalive()
            .unwrap_or_else(|e| panic!("sending KEEPALIVE: {e}\n{}", context()));
        let ka = self.expect_message(timeout, "the peer's KEEPALIVE", context);
        match parse(&ka) {
            Message::Keepalive => {}
            other => panic!(
                "expected KEEPALIVE, got {other:?}\n{}\n{}",
                self.transcript(),
                context()
            ),
        }
        theirs
    }

    /// Half-closes nothing: shuts the connection down both ways.
    pub fn close(&mut self) {
        self.stop_keepalives();
        let _ = self.stream.shutdown(std::net::Shutdown::Both);
    }
}

impl Drop for Speaker {
    fn drop(&mut self) {
        self.stop_keepalives();
    }
}

/// Binds a listener on `addr` (our side, for daemons that dial us).
pub fn listen(addr: SocketAddrV4) -> TcpListener {
    TcpListener::bind(addr).unwrap_or_else(|e| panic!("cannot listen on {addr}: {e}"))
}

/// Parses a whole message with corebgp-core, panicking with a hex dump if the
/// codec rejects it (a daemon's message that our codec rejects is a finding).
pub fn parse(msg: &[u8]) -> Message<'_> {
    Message::parse(msg, MAX_MESSAGE_LEN).unwrap_or_else(|e| {
        panic!("corebgp-core rejected a message: {e} ({e:?})\nbytes: {msg:02x?}")
    })
}

/// A one-line summary of a message for transcripts.
pub fn describe(msg: &[u8]) -> String {
    match Message::parse(msg, MAX_MESSAGE_LEN) {
        Ok(Message::Open(o)) => format!("OPEN as {} hold {} id {}", o.asn(), o.hold_time, o.bgp_id),
        Ok(Message::Update(u)) => format!(
            "UPDATE withdrawn {}B attributes {}B nlri {}B",
            u.withdrawn.len(),
            u.attributes.len(),
            u.nlri.len()
        ),
        Ok(Message::Notification(n)) => format!("NOTIFICATION {n}"),
        Ok(Message::Keepalive) => "KEEPALIVE".into(),
        Ok(Message::RouteRefresh(r)) => format!("ROUTE-REFRESH {r:?}"),
        Err(e) => format!(
            "{} bytes not parsed by corebgp-core ({e}): {:02x?}",
            msg.len(),
            &msg[..msg.len().min(64)]
        ),
    }
}

#[repr(C)]
struct TcpMd5Sig {
    addr: libc::sockaddr_storage,
    flags: u8,
    prefixlen: u8,
    keylen: u16,
    ifindex: libc::c_int,
    key: [u8; 80],
}

fn sockaddr_in(a: SocketAddrV4) -> libc::sockaddr_in {
    libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: a.port().to_be(),
        sin_addr: libc::in_addr {
            s_addr: u32::from(*a.ip()).to_be(),
        },
        sin_zero: [0; 8],
    }
}

fn cvt(r: libc::c_int) -> io::Result<libc::c_int> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

/// Sets the TCP MD5 signature key for `peer` on `fd` (Linux).
pub fn set_tcp_md5(fd: RawFd, peer: Ipv4Addr, key: &str) -> io::Result<()> {
    assert!(key.len() <= 80, "TCP MD5 keys are at most 80 bytes");
    // SAFETY: all-zero is a valid bit pattern for this plain C struct.
    let mut sig: TcpMd5Sig = unsafe { std::mem::zeroed() };
    let sin = sockaddr_in(SocketAddrV4::new(peer, 0));
    // SAFETY: sockaddr_storage is larger than sockaddr_in and suitably aligned.
    unsafe {
        std::ptr::write(
            std::ptr::addr_of_mut!(sig.addr).cast::<libc::sockaddr_in>(),
            sin,
        )
    };
    sig.keylen = key.len() as u16;
    sig.key[..key.len()].copy_from_slice(key.as_bytes());
    // SAFETY: fd is a socket we own; the pointer and length describe `sig`.
    cvt(unsafe {
        libc::setsockopt(
            fd,
            libc::IPPROTO_TCP,
            libc::TCP_MD5SIG,
            std::ptr::addr_of!(sig).cast(),
            std::mem::size_of::<TcpMd5Sig>() as libc::socklen_t,
        )
    })?;
    Ok(())
}

/// A TCP connection from `local` (ephemeral port) to `remote`, with an
/// optional MD5 key, within `timeout` (a peer that drops our SYNs, e.g.
/// because of a wrong MD5 key, makes this time out).
pub fn connect_from(
    local: Ipv4Addr,
    remote: SocketAddrV4,
    md5: Option<&str>,
    timeout: Duration,
) -> io::Result<TcpStream> {
    // SAFETY: plain socket syscalls on a descriptor we own; it is wrapped in a
    // TcpStream (which closes it) right after creation.
    unsafe {
        let fd = cvt(libc::socket(
            libc::AF_INET,
            libc::SOCK_STREAM | libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK,
            0,
        ))?;
        let stream = TcpStream::from_raw_fd(fd);
        if let Some(key) = md5 {
            set_tcp_md5(fd, *remote.ip(), key)?;
        }
        let one: libc::c_int = 1;
        cvt(libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_REUSEADDR,
            std::ptr::addr_of!(one).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        ))?;
        let l = sockaddr_in(SocketAddrV4::new(local, 0));
        cvt(libc::bind(
            fd,
            std::ptr::addr_of!(l).cast(),
            std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
        ))?;
        let r = sockaddr_in(remote);
        let rc = libc::connect(
            fd,
            std::ptr::addr_of!(r).cast(),
            std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
        );
        if rc < 0 {
            let e = io::Error::last_os_error();
            if e.raw_os_error() != Some(libc::EINPROGRESS) {
                return Err(e);
            }
            let mut pfd = libc::pollfd {
                fd,
                events: libc::POLLOUT,
                revents: 0,
            };
            let ms = timeout.as_millis().min(i32::MAX as u128) as libc::c_int;
            if cvt(libc::poll(&mut pfd, 1, ms))? == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("connect to {remote} timed out"),
                ));
            }
            if let Some(e) = stream.take_error()? {
                return Err(e);
            }
        }
        stream.set_nonblocking(false)?;
        Ok(stream)
    }
}
