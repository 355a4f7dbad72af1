//! The shared driver end to end: two drivers over in-memory byte pipes on
//! tokio's paused clock (simulated time: hours pass in milliseconds).

use std::cell::RefCell;
use std::net::{IpAddr, Ipv4Addr};
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration as StdDuration;

use corebgp_core::driver::{
    Buffers, BuffersOf, Clock, Connector, SHUTDOWN_LINGER, SendBuffer, SwapBuf, run,
};
use corebgp_core::outbox::{
    Channel, Outbox, Ring, Store, Swap, SwapChannel, UpdateChannel, UpdateWriter, WriteError,
};
use corebgp_core::plugin::{LocalPlugin, Plugin};
use corebgp_core::session::{
    CapabilitySet, DownReason, Event, Instant, Negotiated, OpenHooks, Peer, PeerConfig,
    SessionConfig,
};
use corebgp_core::wire::{
    AfiSafi, Capability, CeaseSubcode, MAX_MESSAGE_LEN, Notification, NotificationCode,
    UpdateSections, UpdateSubcode, encode_update_sections,
};
use embassy_sync::blocking_mutex::raw::{CriticalSectionRawMutex, NoopRawMutex};
use embedded_io_adapters::tokio_1::FromTokio;
use tokio::io::DuplexStream;
use tokio::sync::{mpsc, oneshot};

/// One end of a pipe, counting the driver's writes.
struct Half {
    inner: FromTokio<DuplexStream>,
    writes: Arc<AtomicUsize>,
}

impl embedded_io_async::ErrorType for Half {
    type Error = <FromTokio<DuplexStream> as embedded_io_async::ErrorType>::Error;
}

impl embedded_io_async::Read for Half {
    async fn read(&mut self, buf: &mut [u8]) -> Result<usize, Self::Error> {
        self.inner.read(buf).await
    }
}

impl embedded_io_async::Write for Half {
    async fn write(&mut self, buf: &[u8]) -> Result<usize, Self::Error> {
        self.writes.fetch_add(1, Ordering::Relaxed);
        self.inner.write(buf).await
    }
    async fn flush(&mut self) -> Result<(), Self::Error> {
        self.inner.flush().await
    }
}

/// Tokio's clock, counting the driver's readings.
struct TokioClock(tokio::time::Instant, Arc<AtomicUsize>);

impl Clock for TokioClock {
    fn now(&self) -> Instant {
        self.1.fetch_add(1, Ordering::Relaxed);
        Instant::from_millis(self.0.elapsed().as_millis() as u64)
    }
    async fn sleep_until(&self, deadline: Instant) {
        tokio::time::sleep_until(self.0 + StdDuration::from_millis(deadline.as_millis())).await
    }
}

/// One side of an in-memory network: dialling sends one end of a duplex
/// pipe to the other side's acceptor.
struct MemConnector {
    to_peer: Option<mpsc::UnboundedSender<DuplexStream>>,
    incoming: tokio::sync::Mutex<mpsc::UnboundedReceiver<DuplexStream>>,
    /// Bytes the pipe buffers per direction (small = a peer that stops
    /// reading blocks the writer soon).
    pipe: usize,
    /// Writes on this side's connections.
    writes: Arc<AtomicUsize>,
    /// What the driver said of idle connections' receive buffers: the
    /// `written` of each [`Connector::idle`], and how many bytes of the
    /// buffer had changed since the call before (the buffer is filled with
    /// [`IDLE_FILL`] at each call).
    idles: std::sync::Mutex<Vec<(usize, usize)>>,
}

const IDLE_FILL: u8 = 0xEE;

impl MemConnector {
    fn half(&self, s: DuplexStream) -> Half {
        Half {
            inner: FromTokio::new(s),
            writes: self.writes.clone(),
        }
    }
}

impl Connector for MemConnector {
    type Transport = Half;
    async fn connect(&self) -> Option<Half> {
        let to = self.to_peer.as_ref()?;
        let (a, b) = tokio::io::duplex(self.pipe);
        to.send(b).ok()?;
        Some(self.half(a))
    }
    async fn accept(&self) -> Half {
        match self.incoming.lock().await.recv().await {
            Some(s) => self.half(s),
            None => std::future::pending().await,
        }
    }
    fn idle(&self, rx: &mut [u8], written: usize) {
        let changed = rx.iter().filter(|&&b| b != IDLE_FILL).count();
        self.idles.lock().unwrap().push((written, changed));
        rx.fill(IDLE_FILL);
    }
}

fn network(pipe: usize) -> (MemConnector, MemConnector) {
    let (tx_a, rx_a) = mpsc::unbounded_channel();
    let (tx_b, rx_b) = mpsc::unbounded_channel();
    (
        MemConnector {
            to_peer: Some(tx_b),
            incoming: tokio::sync::Mutex::new(rx_a),
            pipe,
            writes: Arc::default(),
            idles: Default::default(),
        },
        MemConnector {
            to_peer: Some(tx_a),
            incoming: tokio::sync::Mutex::new(rx_b),
            pipe,
            writes: Arc::default(),
            idles: Default::default(),
        },
    )
}

#[derive(Default)]
struct Log {
    established: u32,
    /// UPDATEs handed over before on_established (must stay 0).
    early_updates: u32,
    closed: Vec<DownReason>,
    updates: Vec<Vec<u8>>,
    notifications: Vec<(u8, u8)>,
    route_refreshes: u32,
    sent: Vec<(u8, u8)>,
}

/// A plugin that records, sends `to_send` UPDATEs on Established, and can
/// be slow or refuse UPDATEs.
struct TestPlugin<'c, Q: Store = Ring<8192>> {
    log: Rc<RefCell<Log>>,
    channel: &'c Channel<NoopRawMutex, Q>,
    to_send: Vec<Vec<u8>>,
    slow: Option<StdDuration>,
    refuse: bool,
}

impl<Q: Store> OpenHooks for TestPlugin<'_, Q> {
    fn capabilities(&mut self, _: &PeerConfig, caps: &mut CapabilitySet) {
        caps.push(&Capability::MultiProtocol(AfiSafi::IPV4_UNICAST))
            .unwrap();
        caps.push(&Capability::RouteRefresh).unwrap();
    }
}

impl<Q: Store> LocalPlugin for TestPlugin<'_, Q> {
    async fn on_established(&mut self, _: &PeerConfig, n: &Negotiated) {
        assert!(n.route_refresh);
        self.log.borrow_mut().established += 1;
        let w = self.channel.writer().expect("open while Established");
        for m in &self.to_send {
            w.send(m).await.expect("queued");
        }
    }
    async fn on_update<'m>(
        &mut self,
        _: &PeerConfig,
        u: UpdateSections<'m>,
    ) -> Result<(), Notification<'m>> {
        // CoreBGP's order: OnEstablished before any UPDATE of the session.
        let early = self.log.borrow().established == 0;
        self.log.borrow_mut().early_updates += u32::from(early);
        self.log.borrow_mut().updates.push(u.nlri.to_vec());
        if let Some(d) = self.slow.take() {
            tokio::time::sleep(d).await;
        }
        if self.refuse {
            return Err(Notification::new(NotificationCode::Update(
                UpdateSubcode::MalformedAttributeList,
            )));
        }
        Ok(())
    }
    fn on_route_refresh(&mut self, _: &PeerConfig, _: &corebgp_core::wire::RouteRefresh<'_>) {
        self.log.borrow_mut().route_refreshes += 1;
    }
    fn on_notification(&mut self, _: &PeerConfig, n: &Notification<'_>) {
        self.log
            .borrow_mut()
            .notifications
            .push((n.code.code(), n.code.subcode()));
    }
    fn on_event(&mut self, _: &PeerConfig, e: &Event) {
        if let Event::NotificationSent { code, .. } = e {
            self.log
                .borrow_mut()
                .sent
                .push((code.code(), code.subcode()));
        }
    }
    fn on_close(&mut self, _: &PeerConfig, reason: DownReason) {
        self.log.borrow_mut().closed.push(reason);
    }
}

fn config(local: u32, remote: u32, id: u8, passive: bool, hold: u16) -> SessionConfig {
    let peer = PeerConfig {
        remote_address: IpAddr::V4(Ipv4Addr::LOCALHOST),
        local_as: local,
        remote_as: remote,
    };
    SessionConfig::new(peer, Ipv4Addr::new(10, 0, 0, id))
        .with_passive(passive)
        .with_hold_time(hold)
}

fn update(prefix: u8) -> Vec<u8> {
    update_of(&[24, 10, 0, prefix])
}

/// An UPDATE announcing `nlri` with one path: ORIGIN IGP, an empty
/// AS_PATH, NEXT_HOP 192.0.2.1.
fn update_of(nlri: &[u8]) -> Vec<u8> {
    let attrs = [0x40, 1, 1, 0, 0x40, 2, 0, 0x40, 3, 4, 192, 0, 2, 1];
    let s = UpdateSections {
        withdrawn: &[],
        attributes: &attrs,
        nlri,
    };
    let mut buf = vec![0u8; 4096];
    let n = encode_update_sections(&s, &mut buf, MAX_MESSAGE_LEN).unwrap();
    buf.truncate(n);
    buf
}

struct Side {
    peer: Peer,
    log: Rc<RefCell<Log>>,
    /// The driver's clock readings.
    clock_reads: Arc<AtomicUsize>,
}

impl Side {
    fn new(cfg: SessionConfig) -> Self {
        let mut peer = Peer::new(cfg);
        peer.start(Instant::ZERO);
        Self {
            peer,
            log: Rc::default(),
            clock_reads: Arc::default(),
        }
    }
}

/// Runs one driver until `stop` fires.
async fn drive(
    side: &mut Side,
    conn: &MemConnector,
    channel: &UpdateChannel<NoopRawMutex, 8192>,
    plugin: TestPlugin<'_>,
    stop: oneshot::Receiver<CeaseSubcode>,
) {
    let clock = TokioClock(tokio::time::Instant::now(), side.clock_reads.clone());
    let mut plugin = plugin;
    let (mut rx0, mut rx1, mut tx) = (vec![0u8; 4096], vec![0u8; 4096], vec![0u8; 4096]);
    let bufs = Buffers {
        rx: [&mut rx0, &mut rx1],
        tx: &mut tx,
    };
    let stop = async { stop.await.unwrap_or(CeaseSubcode::AdministrativeShutdown) };
    run(
        &mut side.peer,
        conn,
        &clock,
        &mut plugin,
        channel,
        bufs,
        stop,
    )
    .await;
}

/// [`drive`] with the send path of corebgp-std: a [`SwapChannel`] whose
/// buffers the driver trades with it ([`SwapBuf`]) instead of copying.
async fn drive_swap(
    side: &mut Side,
    conn: &MemConnector,
    channel: &impl Outbox,
    plugin: TestPlugin<'_, Swap>,
    stop: oneshot::Receiver<CeaseSubcode>,
) {
    let clock = TokioClock(tokio::time::Instant::now(), side.clock_reads.clone());
    let mut plugin = plugin;
    let (mut rx0, mut rx1) = (vec![0u8; 4096], vec![0u8; 4096]);
    let bufs = BuffersOf {
        rx: [&mut rx0, &mut rx1],
        tx: SwapBuf::default(),
    };
    let stop = async { stop.await.unwrap_or(CeaseSubcode::AdministrativeShutdown) };
    run(
        &mut side.peer,
        conn,
        &clock,
        &mut plugin,
        channel,
        bufs,
        stop,
    )
    .await;
}

/// A [`SwapChannel`] as the driver's outbox, counting the buffers the
/// driver gives back.
struct CountingOutbox<'c> {
    inner: &'c SwapChannel<NoopRawMutex>,
    given_back: std::cell::Cell<u32>,
}

impl Outbox for CountingOutbox<'_> {
    fn ready(&self) -> impl std::future::Future<Output = ()> {
        self.inner.ready()
    }
    fn take(&self, buf: &mut [u8]) -> Option<usize> {
        self.inner.take(buf)
    }
    fn take_if_fits(&self, buf: &mut [u8]) -> Option<usize> {
        self.inner.take_if_fits(buf)
    }
    fn swap(&self, tx: &mut &'static mut [u8]) -> usize {
        self.inner.swap(tx)
    }
    fn give_back(&self, tx: &mut &'static mut [u8]) {
        if !tx.is_empty() {
            self.given_back.set(self.given_back.get() + 1);
        }
        self.inner.give_back(tx)
    }
    fn open(&self, max_len: usize) {
        self.inner.open(max_len)
    }
    fn close(&self) {
        self.inner.close()
    }
}

/// A [`SwapChannel`] over two buffers of `len` bytes (leaked: a test's
/// stand-in for corebgp-std's mapped pages).
fn swap_channel(len: usize) -> SwapChannel<NoopRawMutex> {
    let leak = || Box::leak(vec![0u8; len].into_boxed_slice());
    SwapChannel::new(leak(), leak())
}

/// The lengths of the buffers a closed channel holds (not the driver's).
fn held_buffers(ch: &SwapChannel<NoopRawMutex>) -> Vec<usize> {
    let mut lens = vec![];
    ch.free_buffers(|b| lens.push(b.len()));
    lens
}

fn plugin<'c, Q: Store>(
    log: &Rc<RefCell<Log>>,
    channel: &'c Channel<NoopRawMutex, Q>,
) -> TestPlugin<'c, Q> {
    TestPlugin {
        log: log.clone(),
        channel,
        to_send: vec![],
        slow: None,
        refuse: false,
    }
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn establish_exchange_keepalive_for_an_hour_then_cease() {
    let (ca, cb) = network(64 * 1024);
    let (chan_a, chan_b) = (UpdateChannel::new(), UpdateChannel::new());
    let mut a = Side::new(config(65001, 65002, 1, false, 9));
    let mut b = Side::new(config(65002, 65001, 2, true, 9));
    let mut pa = plugin(&a.log, &chan_a);
    pa.to_send = vec![update(1), update(2), update(3)];
    let pb = plugin(&b.log, &chan_b);
    let (stop_a, stop_a_rx) = oneshot::channel();
    let (stop_b, stop_b_rx) = oneshot::channel();
    let (la, lb) = (a.log.clone(), b.log.clone());
    let script = async {
        tokio::time::sleep(StdDuration::from_secs(3600)).await;
        // An hour of 9-second hold times: only keepalives kept it up.
        assert_eq!(la.borrow().established, 1);
        assert_eq!(lb.borrow().established, 1);
        assert!(la.borrow().closed.is_empty() && lb.borrow().closed.is_empty());
        assert_eq!(
            lb.borrow().updates,
            vec![vec![24, 10, 0, 1], vec![24, 10, 0, 2], vec![24, 10, 0, 3]]
        );
        stop_a.send(CeaseSubcode::PeerDeconfigured).unwrap();
        tokio::time::sleep(StdDuration::from_secs(1)).await;
        assert_eq!(lb.borrow().notifications, vec![(6, 3)]);
        assert_eq!(la.borrow().sent, vec![(6, 3)]);
        stop_b.send(CeaseSubcode::AdministrativeShutdown).unwrap();
    };
    tokio::join!(
        drive(&mut a, &ca, &chan_a, pa, stop_a_rx),
        drive(&mut b, &cb, &chan_b, pb, stop_b_rx),
        script
    );
    assert_eq!(a.log.borrow().closed, vec![DownReason::Stopped]);
    assert_eq!(
        b.log.borrow().early_updates,
        0,
        "UPDATEs before on_established"
    );
    assert!(!chan_a.is_open(), "the writer's episode ended");
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn slow_plugin_does_not_stop_keepalives_or_trip_the_hold_timer() {
    let (ca, cb) = network(64 * 1024);
    let (chan_a, chan_b) = (UpdateChannel::new(), UpdateChannel::new());
    let mut a = Side::new(config(65001, 65002, 1, false, 3));
    let mut b = Side::new(config(65002, 65001, 2, true, 3));
    let mut pa = plugin(&a.log, &chan_a);
    pa.to_send = vec![update(7)];
    let mut pb = plugin(&b.log, &chan_b);
    // Ten minutes on one UPDATE with a 3-second hold time (CoreBGP #55).
    pb.slow = Some(StdDuration::from_secs(600));
    let (stop_a, stop_a_rx) = oneshot::channel();
    let (stop_b, stop_b_rx) = oneshot::channel();
    let (la, lb) = (a.log.clone(), b.log.clone());
    let script = async {
        tokio::time::sleep(StdDuration::from_secs(900)).await;
        assert_eq!(lb.borrow().updates.len(), 1);
        assert!(
            la.borrow().closed.is_empty(),
            "A saw keepalives from B throughout: {:?}",
            la.borrow().closed
        );
        assert!(
            lb.borrow().closed.is_empty(),
            "B's hold timer waited for its plugin"
        );
        assert_eq!((la.borrow().established, lb.borrow().established), (1, 1));
        stop_a.send(CeaseSubcode::AdministrativeShutdown).unwrap();
        stop_b.send(CeaseSubcode::AdministrativeShutdown).unwrap();
    };
    tokio::join!(
        drive(&mut a, &ca, &chan_a, pa, stop_a_rx),
        drive(&mut b, &cb, &chan_b, pb, stop_b_rx),
        script
    );
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn update_refused_by_the_plugin_resets_and_the_session_comes_back() {
    let (ca, cb) = network(64 * 1024);
    let (chan_a, chan_b) = (UpdateChannel::new(), UpdateChannel::new());
    let mut a = Side::new(config(65001, 65002, 1, false, 90).with_damping(false));
    let mut b = Side::new(config(65002, 65001, 2, true, 90).with_damping(false));
    let mut pa = plugin(&a.log, &chan_a);
    pa.to_send = vec![update(9)];
    let mut pb = plugin(&b.log, &chan_b);
    pb.refuse = true;
    let (stop_a, stop_a_rx) = oneshot::channel();
    let (stop_b, stop_b_rx) = oneshot::channel();
    let (la, lb) = (a.log.clone(), b.log.clone());
    let script = async {
        tokio::time::sleep(StdDuration::from_secs(30)).await;
        // B refused with 3/1; A got it; both went down and came back after
        // the idle hold time (damping is off), and again, and again.
        assert_eq!(lb.borrow().sent.first(), Some(&(3, 1)));
        assert_eq!(la.borrow().notifications.first(), Some(&(3, 1)));
        assert!(
            la.borrow().established >= 2,
            "re-established: {}",
            la.borrow().established
        );
        stop_a.send(CeaseSubcode::AdministrativeShutdown).unwrap();
        stop_b.send(CeaseSubcode::AdministrativeShutdown).unwrap();
    };
    tokio::join!(
        drive(&mut a, &ca, &chan_a, pa, stop_a_rx),
        drive(&mut b, &cb, &chan_b, pb, stop_b_rx),
        script
    );
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn a_peer_that_stops_reading_cannot_hold_up_shutdown() {
    // B accepts but never runs a driver: nothing reads A's bytes, and the
    // 64-byte pipe fills at once.
    let (ca, cb) = network(64);
    let chan_a = UpdateChannel::new();
    let mut a = Side::new(config(65001, 65002, 1, false, 90));
    let pa = plugin(&a.log, &chan_a);
    let (stop_a, stop_a_rx) = oneshot::channel();
    let script = async {
        let _held = cb.accept().await;
        tokio::time::sleep(StdDuration::from_secs(5)).await;
        stop_a.send(CeaseSubcode::AdministrativeShutdown).unwrap();
        _held
    };
    let start = tokio::time::Instant::now();
    let (_, _held) = tokio::join!(drive(&mut a, &ca, &chan_a, pa, stop_a_rx), script);
    let took = start.elapsed();
    assert!(
        took <= StdDuration::from_secs(5)
            + StdDuration::from_millis(SHUTDOWN_LINGER.as_millis() as u64 + 10)
    );
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn writers_fail_after_the_session_closes() {
    let (ca, cb) = network(64 * 1024);
    let (chan_a, chan_b) = (UpdateChannel::new(), UpdateChannel::new());
    let mut a = Side::new(config(65001, 65002, 1, false, 9));
    let mut b = Side::new(config(65002, 65001, 2, true, 9));
    assert_eq!(chan_a.writer().err(), Some(WriteError::NotEstablished));
    let pa = plugin(&a.log, &chan_a);
    let pb = plugin(&b.log, &chan_b);
    let (stop_a, stop_a_rx) = oneshot::channel();
    let (stop_b, stop_b_rx) = oneshot::channel();
    let chan_ref = &chan_a;
    let script = async {
        tokio::time::sleep(StdDuration::from_secs(5)).await;
        let w: UpdateWriter<&UpdateChannel<NoopRawMutex, 8192>> =
            chan_ref.writer().expect("Established");
        assert_eq!(w.max_message_len(), 4096);
        let mut big = vec![0u8; 5000];
        big[..16].fill(0xff);
        big[16..18].copy_from_slice(&5000u16.to_be_bytes());
        big[18] = 2;
        assert!(matches!(
            w.send(&big).await,
            Err(WriteError::TooLong { len: 5000, .. })
        ));
        assert_eq!(w.send(&[0u8; 30]).await, Err(WriteError::NotAnUpdate));
        w.send(&update(4)).await.unwrap();
        tokio::time::sleep(StdDuration::from_secs(1)).await;
        stop_b.send(CeaseSubcode::AdministrativeReset).unwrap();
        tokio::time::sleep(StdDuration::from_secs(1)).await;
        assert_eq!(w.send(&update(5)).await, Err(WriteError::Closed));
        assert!(w.is_closed());
        stop_a.send(CeaseSubcode::AdministrativeShutdown).unwrap();
    };
    tokio::join!(
        drive(&mut a, &ca, &chan_a, pa, stop_a_rx),
        drive(&mut b, &cb, &chan_b, pb, stop_b_rx),
        script
    );
    assert_eq!(b.log.borrow().updates, vec![vec![24, 10, 0, 4]]);
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn many_small_updates_share_writes_and_clock_readings() {
    // 300 one-prefix UPDATEs (41 bytes each) queued at once: the sender
    // writes as many as its 4096-byte send buffer holds in one write, and
    // the receiver reads the clock once per read, not once per message.
    let (ca, cb) = network(64 * 1024);
    let (chan_a, chan_b) = (UpdateChannel::new(), UpdateChannel::new());
    let mut a = Side::new(config(65001, 65002, 1, false, 90));
    let mut b = Side::new(config(65002, 65001, 2, true, 90));
    let mut pa = plugin(&a.log, &chan_a);
    let sent: Vec<Vec<u8>> = (0..300u16)
        .map(|i| update_of(&[24, 10, (i >> 8) as u8, i as u8]))
        .collect();
    pa.to_send = sent.clone();
    let pb = plugin(&b.log, &chan_b);
    let (stop_a, stop_a_rx) = oneshot::channel();
    let (stop_b, stop_b_rx) = oneshot::channel();
    let lb = b.log.clone();
    let (writes_a, reads_b) = (ca.writes.clone(), b.clock_reads.clone());
    let script = async {
        let deadline = tokio::time::Instant::now() + StdDuration::from_secs(60);
        while lb.borrow().updates.len() < sent.len() {
            assert!(tokio::time::Instant::now() < deadline, "not all arrived");
            tokio::task::yield_now().await;
        }
        // From the start: the session's own OPEN and KEEPALIVEs included.
        let writes = writes_a.load(Ordering::Relaxed);
        let reads = reads_b.load(Ordering::Relaxed);
        // 300 × 41 bytes fit in 4 sends of 4096 bytes; allow for the
        // channel handing them over in smaller runs. One write and two
        // clock readings per UPDATE (b074793: 303 writes, 625 readings)
        // fail; this driver made 7 and 18.
        assert!(writes <= 30, "{writes} writes for 300 UPDATEs");
        assert!(reads < 100, "{reads} clock readings for 300 UPDATEs");
        stop_a.send(CeaseSubcode::AdministrativeShutdown).unwrap();
        stop_b.send(CeaseSubcode::AdministrativeShutdown).unwrap();
    };
    tokio::join!(
        drive(&mut a, &ca, &chan_a, pa, stop_a_rx),
        drive(&mut b, &cb, &chan_b, pb, stop_b_rx),
        script
    );
    let want: Vec<Vec<u8>> = sent.iter().map(|m| m[m.len() - 4..].to_vec()).collect();
    assert_eq!(b.log.borrow().updates, want, "all, in order");
    // B found nothing malformed: at most the Cease of its own stop.
    let sent = b.log.borrow().sent.clone();
    assert!(sent.iter().all(|&(code, _)| code == 6), "{sent:?}");
}

/// An UPDATE of `n` /24s (10.x.y.0/24), one path.
fn big_update(n: u16) -> Vec<u8> {
    let nlri: Vec<u8> = (0..n)
        .flat_map(|i| [24, 10, (i >> 8) as u8, i as u8])
        .collect();
    update_of(&nlri)
}

/// A 64-byte pipe: a 2 KB UPDATE takes dozens of writes, so a stop of A
/// lands while it is half written (the driver has taken it from the
/// channel, its writer was told it was sent). It must go out whole, then
/// the Cease: B sees the UPDATE and a clean 6/2, not a NOTIFICATION spliced
/// into the middle of a message. `run_a` drives A on `ca` over `chan_a`
/// until `stop_a` fires; B is made here, on `cb`.
async fn a_stop_mid_update_comes_after_it<Q: Store>(
    cb: &MemConnector,
    chan_a: &Channel<NoopRawMutex, Q>,
    run_a: impl std::future::Future<Output = ()>,
    stop_a: oneshot::Sender<CeaseSubcode>,
) {
    let chan_b = UpdateChannel::new();
    let mut b = Side::new(config(65002, 65001, 2, true, 90));
    let pb = plugin(&b.log, &chan_b);
    let (stop_b, stop_b_rx) = oneshot::channel();
    let msg = big_update(500);
    assert!(msg.len() > 1900);
    let script = async {
        while !chan_a.is_open() {
            tokio::time::sleep(StdDuration::from_millis(10)).await;
        }
        let w = chan_a.writer().expect("Established");
        w.send(&msg).await.unwrap();
        // Taken by the driver: in flight, not in the channel any more.
        while chan_a.queued() > 0 {
            tokio::task::yield_now().await;
        }
        stop_a.send(CeaseSubcode::AdministrativeShutdown).unwrap();
        tokio::time::sleep(StdDuration::from_secs(5)).await;
        stop_b.send(CeaseSubcode::AdministrativeShutdown).unwrap();
    };
    tokio::join!(run_a, drive(&mut b, cb, &chan_b, pb, stop_b_rx), script);
    let log = b.log.borrow();
    assert_eq!(log.updates.len(), 1, "the UPDATE arrived whole");
    assert_eq!(log.updates[0].len(), 500 * 4);
    assert_eq!(log.notifications, vec![(6, 2)], "then the Cease, intact");
    assert!(
        log.sent.is_empty(),
        "B found nothing malformed: {:?}",
        log.sent
    );
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn an_update_taken_from_the_outbox_is_written_whole_before_the_stops_cease() {
    let (ca, cb) = network(64);
    let chan_a = UpdateChannel::new();
    let mut a = Side::new(config(65001, 65002, 1, false, 90));
    let pa = plugin(&a.log, &chan_a);
    let (stop_a, stop_a_rx) = oneshot::channel();
    let run_a = drive(&mut a, &ca, &chan_a, pa, stop_a_rx);
    a_stop_mid_update_comes_after_it(&cb, &chan_a, run_a, stop_a).await;
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn after_the_send_hold_timer_a_peer_that_never_reads_is_given_up_rfc9687() {
    // B answers A's OPEN by hand, then never reads again: A's UPDATEs fill
    // the 64-byte pipe, its send hold timer (60 s here) expires, and its
    // 8/0 is stuck behind them. A must close the connection itself
    // SHUTDOWN_LINGER later and move on (dial again), not wait for ever.
    use embedded_io_async::{Read, Write};
    let (ca, cb) = network(64);
    let chan_a = UpdateChannel::new();
    let send_hold = StdDuration::from_secs(60);
    let cfg = config(65001, 65002, 1, false, 90)
        .with_send_hold_time(Some(send_hold))
        .with_damping(false);
    let mut a = Side::new(cfg.with_idle_hold_time(corebgp_core::session::Duration::from_secs(1)));
    let mut pa = plugin(&a.log, &chan_a);
    // Three 2 KB UPDATEs: they fit the channel, not the pipe.
    pa.to_send = vec![big_update(500), big_update(501), big_update(502)];
    let (stop_a, stop_a_rx) = oneshot::channel();
    let log = a.log.clone();
    let script = async {
        let mut b = cb.accept().await;
        let mut head = [0u8; 19];
        b.read_exact(&mut head).await.unwrap();
        assert_eq!(head[18], 1, "A's OPEN");
        let mut rest = vec![0u8; usize::from(u16::from_be_bytes([head[16], head[17]])) - 19];
        b.read_exact(&mut rest).await.unwrap();
        // OPEN: AS 65002, hold 90, id 10.0.0.2, IPv4 unicast, Route Refresh.
        let mut open = vec![0xff; 16];
        open.extend_from_slice(&[0, 45, 1, 4, 0xfd, 0xea, 0, 90, 10, 0, 0, 2, 16, 2, 14]);
        open.extend_from_slice(&[1, 4, 0, 1, 0, 1, 2, 0, 65, 4, 0, 0, 0xfd, 0xea]);
        assert_eq!(open.len(), 45);
        b.write_all(&open).await.unwrap();
        let mut keepalive = vec![0xff; 16];
        keepalive.extend_from_slice(&[0, 19, 4]);
        b.write_all(&keepalive).await.unwrap();
        while log.borrow().established == 0 {
            tokio::time::sleep(StdDuration::from_millis(10)).await;
        }
        let up = tokio::time::Instant::now();
        // No more reading: the next connection is the proof A let go.
        let again = tokio::time::timeout(StdDuration::from_secs(600), cb.accept())
            .await
            .expect("A dials again: the stuck connection was given up");
        let took = up.elapsed();
        assert!(took >= send_hold, "{took:?}");
        assert!(
            took <= send_hold + SHUTDOWN_LINGER + StdDuration::from_secs(2),
            "{took:?}"
        );
        stop_a.send(CeaseSubcode::AdministrativeShutdown).unwrap();
        (b, again)
    };
    let (_, _held) = tokio::join!(drive(&mut a, &ca, &chan_a, pa, stop_a_rx), script);
    let log = a.log.borrow();
    assert_eq!(log.established, 1);
    assert_eq!(
        log.closed,
        vec![DownReason::NotificationSent(
            NotificationCode::SEND_HOLD_TIMER_EXPIRED
        )]
    );
    // Then the stop's Cease on the new connection (OpenSent).
    assert_eq!(log.sent, vec![(8, 0), (6, 2)]);
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn an_idle_sessions_control_messages_leave_its_receive_buffer_alone() {
    // B answers A's OPEN by hand and then idles: KEEPALIVEs for ten
    // minutes (A's hold time is 9 s: each one must be heard), a
    // ROUTE-REFRESH, an End-of-RIB (an UPDATE, 23 bytes: it goes to the
    // buffer and on_update), KEEPALIVEs again, and a Cease. Every message
    // is handled as usual, and A's receive buffer is written by the OPEN
    // and the End-of-RIB only, each reported to the adapter once.
    use embedded_io_async::{Read, Write};
    let (ca, cb) = network(64 * 1024);
    let chan_a: UpdateChannel<NoopRawMutex, 8192> = UpdateChannel::new();
    let cfg = config(65001, 65002, 1, false, 9)
        .with_idle_hold_time(corebgp_core::session::Duration::from_secs(3600));
    let mut a = Side::new(cfg);
    let pa = plugin(&a.log, &chan_a);
    let (stop_a, stop_a_rx) = oneshot::channel();
    let log = a.log.clone();
    let mut keepalive = vec![0xff; 16];
    keepalive.extend_from_slice(&[0, 19, 4]);
    let script = async {
        let mut b = cb.accept().await;
        let mut head = [0u8; 19];
        b.read_exact(&mut head).await.unwrap();
        assert_eq!(head[18], 1, "A's OPEN");
        let mut rest = vec![0u8; usize::from(u16::from_be_bytes([head[16], head[17]])) - 19];
        b.read_exact(&mut rest).await.unwrap();
        // OPEN: AS 65002, hold 9, id 10.0.0.2, IPv4 unicast, Route Refresh.
        let mut open = vec![0xff; 16];
        open.extend_from_slice(&[0, 45, 1, 4, 0xfd, 0xea, 0, 9, 10, 0, 0, 2, 16, 2, 14]);
        open.extend_from_slice(&[1, 4, 0, 1, 0, 1, 2, 0, 65, 4, 0, 0, 0xfd, 0xea]);
        b.write_all(&open).await.unwrap();
        b.write_all(&keepalive).await.unwrap();
        // A's KEEPALIVEs are drained so that its writes never block.
        let (mut br, mut bw) = tokio::io::split(b.inner.into_inner());
        let drain = tokio::spawn(async move {
            use tokio::io::AsyncReadExt;
            let mut sink = [0u8; 256];
            while matches!(br.read(&mut sink).await, Ok(n) if n > 0) {}
        });
        use tokio::io::AsyncWriteExt;
        async fn keepalives(bw: &mut tokio::io::WriteHalf<DuplexStream>, k: &[u8]) {
            for _ in 0..200 {
                tokio::time::sleep(StdDuration::from_secs(3)).await;
                bw.write_all(k).await.unwrap();
            }
        }
        keepalives(&mut bw, &keepalive).await;
        tokio::time::sleep(StdDuration::from_secs(1)).await;
        let mut rr = vec![0xff; 16];
        rr.extend_from_slice(&[0, 23, 5, 0, 1, 0, 1]);
        bw.write_all(&rr).await.unwrap();
        // Each message apart from the others: a read of its own.
        tokio::time::sleep(StdDuration::from_secs(1)).await;
        // IPv4 End-of-RIB: an UPDATE with nothing in it (RFC 4724 §2).
        let mut eor = vec![0xff; 16];
        eor.extend_from_slice(&[0, 23, 2, 0, 0, 0, 0]);
        bw.write_all(&eor).await.unwrap();
        keepalives(&mut bw, &keepalive).await;
        tokio::time::sleep(StdDuration::from_secs(1)).await;
        let mut cease = vec![0xff; 16];
        cease.extend_from_slice(&[0, 21, 3, 6, 2]);
        bw.write_all(&cease).await.unwrap();
        while log.borrow().closed.is_empty() {
            tokio::time::sleep(StdDuration::from_millis(10)).await;
        }
        stop_a.send(CeaseSubcode::AdministrativeShutdown).unwrap();
        drain.abort();
    };
    let clock = TokioClock(tokio::time::Instant::now(), a.clock_reads.clone());
    let mut pa = pa;
    let (mut rx0, mut rx1, mut tx) = (vec![0u8; 4096], vec![0u8; 4096], vec![0u8; 4096]);
    let stop = async {
        stop_a_rx
            .await
            .unwrap_or(CeaseSubcode::AdministrativeShutdown)
    };
    let driver = run(
        &mut a.peer,
        &ca,
        &clock,
        &mut pa,
        &chan_a,
        Buffers {
            rx: [&mut rx0, &mut rx1],
            tx: &mut tx,
        },
        stop,
    );
    tokio::join!(driver, script);
    let log = a.log.borrow();
    assert_eq!(log.established, 1);
    assert_eq!(log.updates, vec![Vec::<u8>::new()], "the End-of-RIB");
    assert_eq!(log.route_refreshes, 1);
    assert_eq!(log.notifications, vec![(6, 2)]);
    assert_eq!(
        log.closed,
        vec![DownReason::NotificationReceived(NotificationCode::Cease(
            CeaseSubcode::AdministrativeShutdown
        ))]
    );
    // Told once when the session went quiet (a new connection: all of the
    // buffer), then once after the End-of-RIB (its 23 bytes, which are all
    // that changed); the KEEPALIVEs, the ROUTE-REFRESH and the Cease left
    // the buffer as the last call left it.
    let idles = ca.idles.lock().unwrap().clone();
    assert_eq!(idles.len(), 2, "{idles:?}");
    assert_eq!(idles[0].0, 4096);
    assert_eq!(idles[1], (23, 23));
    assert!(
        rx0.iter().all(|&b| b == IDLE_FILL),
        "written after the last idle"
    );
}

/// The Send flavour: a generic `Plugin` drives a session spawned on a
/// multi-threaded runtime (this test fails to compile if the driver's
/// future is not `Send`).
struct SendPlugin;

impl OpenHooks for SendPlugin {
    fn capabilities(&mut self, _: &PeerConfig, _: &mut CapabilitySet) {}
}

impl Plugin for SendPlugin {
    async fn on_established(&mut self, _: &PeerConfig, _: &Negotiated) {}
    async fn on_update<'m>(
        &mut self,
        _: &PeerConfig,
        _: UpdateSections<'m>,
    ) -> Result<(), Notification<'m>> {
        Ok(())
    }
}

fn spawn_generic<P: Plugin + 'static>(
    mut plugin: P,
    conn: MemConnector,
) -> tokio::task::JoinHandle<u32> {
    tokio::spawn(async move {
        let clock = TokioClock(tokio::time::Instant::now(), Arc::default());
        let channel: std::sync::Arc<UpdateChannel<CriticalSectionRawMutex, 4096>> =
            Default::default();
        let mut peer = Peer::new(config(65001, 65002, 1, false, 9));
        peer.start(clock.now());
        let (mut rx0, mut rx1, mut tx) = (vec![0u8; 4096], vec![0u8; 4096], vec![0u8; 4096]);
        let bufs = Buffers {
            rx: [&mut rx0, &mut rx1],
            tx: &mut tx,
        };
        let stop = async {
            tokio::time::sleep(StdDuration::from_secs(2)).await;
            CeaseSubcode::AdministrativeShutdown
        };
        run(&mut peer, &conn, &clock, &mut plugin, &*channel, bufs, stop).await;
        peer.state() as u32
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_flavour_spawns_on_a_multithreaded_runtime() {
    let (ca, _cb) = network(4096);
    let state = spawn_generic(SendPlugin, ca).await.unwrap();
    // Dialled, no answer from the other side: not Established, and stopped.
    assert_eq!(state, corebgp_core::session::StateKind::Idle as u32);
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn updates_through_swapped_buffers_arrive_in_order_in_few_writes() {
    // 3,000 one-prefix UPDATEs (41 bytes each) through a SwapChannel of two
    // 4096-byte buffers: about 30 trades of a filled buffer for a drained
    // one while the writer keeps filling. Every UPDATE arrives, in order,
    // each whole (B found nothing malformed), in about one write per
    // buffer, not one per UPDATE; and once the driver is done it has given
    // its buffer back (the channel holds both again).
    let (ca, cb) = network(64 * 1024);
    let chan_a = swap_channel(4096);
    let chan_b = UpdateChannel::new();
    let mut a = Side::new(config(65001, 65002, 1, false, 90));
    let mut b = Side::new(config(65002, 65001, 2, true, 90));
    let mut pa = plugin(&a.log, &chan_a);
    let sent: Vec<Vec<u8>> = (0..3000u16)
        .map(|i| update_of(&[24, 10, (i >> 8) as u8, i as u8]))
        .collect();
    pa.to_send = sent.clone();
    let pb = plugin(&b.log, &chan_b);
    let (stop_a, stop_a_rx) = oneshot::channel();
    let (stop_b, stop_b_rx) = oneshot::channel();
    let lb = b.log.clone();
    let writes_a = ca.writes.clone();
    let script = async {
        let deadline = tokio::time::Instant::now() + StdDuration::from_secs(60);
        while lb.borrow().updates.len() < sent.len() {
            assert!(tokio::time::Instant::now() < deadline, "not all arrived");
            tokio::task::yield_now().await;
        }
        let writes = writes_a.load(Ordering::Relaxed);
        // 123,000 bytes in 4096-byte buffers: 31 trades at least. One
        // write per UPDATE would be 3,000.
        assert!(writes <= 120, "{writes} writes for 3,000 UPDATEs");
        stop_a.send(CeaseSubcode::AdministrativeShutdown).unwrap();
        stop_b.send(CeaseSubcode::AdministrativeShutdown).unwrap();
    };
    tokio::join!(
        drive_swap(&mut a, &ca, &chan_a, pa, stop_a_rx),
        drive(&mut b, &cb, &chan_b, pb, stop_b_rx),
        script
    );
    let want: Vec<Vec<u8>> = sent.iter().map(|m| m[m.len() - 4..].to_vec()).collect();
    assert_eq!(b.log.borrow().updates, want, "all, in order");
    let sent = b.log.borrow().sent.clone();
    assert!(sent.iter().all(|&(code, _)| code == 6), "{sent:?}");
    assert_eq!(held_buffers(&chan_a), vec![4096, 4096], "given back");
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn a_drained_send_buffer_goes_back_at_a_keepalive_not_while_updates_stream() {
    // While a table streams the driver keeps its drained buffer (the next
    // trade passes it on), since giving it back lets the adapter release
    // its memory, which the next fill would fault in again; once no UPDATE
    // went for a KeepaliveTime, the KEEPALIVE due gives the buffer back.
    let (ca, cb) = network(64 * 1024);
    let chan_a = swap_channel(4096);
    let out_a = CountingOutbox {
        inner: &chan_a,
        given_back: Default::default(),
    };
    let chan_b = UpdateChannel::new();
    let mut a = Side::new(config(65001, 65002, 1, false, 90));
    let mut b = Side::new(config(65002, 65001, 2, true, 90));
    let mut pa = plugin(&a.log, &chan_a);
    let sent: Vec<Vec<u8>> = (0..3000u16)
        .map(|i| update_of(&[24, 10, (i >> 8) as u8, i as u8]))
        .collect();
    pa.to_send = sent.clone();
    let pb = plugin(&b.log, &chan_b);
    let (stop_a, stop_a_rx) = oneshot::channel();
    let (stop_b, stop_b_rx) = oneshot::channel();
    let lb = b.log.clone();
    let given = &out_a.given_back;
    let script = async {
        let deadline = tokio::time::Instant::now() + StdDuration::from_secs(60);
        while lb.borrow().updates.len() < sent.len() {
            assert!(tokio::time::Instant::now() < deadline, "not all arrived");
            tokio::task::yield_now().await;
        }
        assert_eq!(given.get(), 0, "given back while UPDATEs streamed");
        // One KEEPALIVE interval (hold time 90 s: 30 s) later.
        tokio::time::sleep(StdDuration::from_secs(31)).await;
        assert_eq!(given.get(), 1, "given back at the KEEPALIVE");
        stop_a.send(CeaseSubcode::AdministrativeShutdown).unwrap();
        stop_b.send(CeaseSubcode::AdministrativeShutdown).unwrap();
    };
    tokio::join!(
        drive_swap(&mut a, &ca, &out_a, pa, stop_a_rx),
        drive(&mut b, &cb, &chan_b, pb, stop_b_rx),
        script
    );
    assert_eq!(b.log.borrow().updates.len(), sent.len());
    assert_eq!(held_buffers(&chan_a), vec![4096, 4096], "given back");
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn an_update_in_a_swapped_buffer_is_written_whole_before_the_stops_cease() {
    // As above, with the driver writing from a buffer traded with a
    // SwapChannel: the stop closes the channel while the UPDATE is half
    // written, which must not touch the driver's buffer; both buffers are
    // the channel's again at the end.
    let (ca, cb) = network(64);
    let chan_a = swap_channel(4096);
    let mut a = Side::new(config(65001, 65002, 1, false, 90));
    let pa = plugin(&a.log, &chan_a);
    let (stop_a, stop_a_rx) = oneshot::channel();
    let run_a = drive_swap(&mut a, &ca, &chan_a, pa, stop_a_rx);
    a_stop_mid_update_comes_after_it(&cb, &chan_a, run_a, stop_a).await;
    assert_eq!(held_buffers(&chan_a), vec![4096, 4096], "given back");
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn a_swap_channel_takes_updates_up_to_the_negotiated_maximum() {
    // Buffers of 8192 bytes, no RFC 8654: writers are held to 4096 bytes
    // (RFC 4271 §4), and a 4096-byte UPDATE goes through whole.
    let (ca, cb) = network(64 * 1024);
    let chan_a = swap_channel(8192);
    let chan_b = UpdateChannel::new();
    let mut a = Side::new(config(65001, 65002, 1, false, 90));
    let mut b = Side::new(config(65002, 65001, 2, true, 90));
    let pa = plugin(&a.log, &chan_a);
    let pb = plugin(&b.log, &chan_b);
    let (stop_a, stop_a_rx) = oneshot::channel();
    let (stop_b, stop_b_rx) = oneshot::channel();
    // 37 bytes of header and attributes, 1,014 /24s and one /16: 4096.
    let mut nlri: Vec<u8> = (0..1014u16)
        .flat_map(|i| [24, 10, (i >> 8) as u8, i as u8])
        .collect();
    nlri.extend([16, 11, 0]);
    let max = update_of(&nlri);
    assert_eq!(max.len(), 4096);
    let mut over = max.clone();
    over.push(0);
    over[16..18].copy_from_slice(&4097u16.to_be_bytes());
    let (chan_ref, lb) = (&chan_a, b.log.clone());
    let script = async {
        while !chan_ref.is_open() {
            tokio::time::sleep(StdDuration::from_millis(10)).await;
        }
        let w = chan_ref.writer().expect("Established");
        assert_eq!(w.max_message_len(), 4096, "the negotiated maximum");
        assert_eq!(
            w.send(&over).await,
            Err(WriteError::TooLong {
                len: 4097,
                max: 4096
            })
        );
        w.send(&max).await.unwrap();
        while lb.borrow().updates.is_empty() {
            tokio::time::sleep(StdDuration::from_millis(10)).await;
        }
        stop_a.send(CeaseSubcode::AdministrativeShutdown).unwrap();
        stop_b.send(CeaseSubcode::AdministrativeShutdown).unwrap();
    };
    tokio::join!(
        drive_swap(&mut a, &ca, &chan_a, pa, stop_a_rx),
        drive(&mut b, &cb, &chan_b, pb, stop_b_rx),
        script
    );
    assert_eq!(b.log.borrow().updates, vec![nlri]);
}

#[test]
fn an_update_the_session_refuses_is_cut_out_of_a_swapped_buffer() {
    // The session checks each UPDATE as the driver takes it
    // (`Peer::send_update`); one it refuses is dropped and the rest close
    // up, in order, in the same buffer: the driver's, traded (same memory
    // as the channel filled, no copy).
    let ch = swap_channel(1024);
    ch.open(4096);
    let w = ch.writer().unwrap();
    let msgs = [update(1), big_update(10), update(3)];
    for m in &msgs {
        futures_now(w.send(m)).unwrap();
    }
    let mut filled = std::ptr::null();
    let mut lent = 0;
    ch.free_buffers(|_| lent += 1);
    assert_eq!(lent, 0, "open: the channel lends no buffer");
    let mut tx = SwapBuf::default();
    let refused = msgs[1].clone();
    let kept = tx.refill(&ch, |m| {
        filled = m.as_ptr();
        m != &refused[..]
    });
    assert_eq!(kept, msgs[0].len() + msgs[2].len());
    assert_eq!(&tx[..msgs[0].len()], &msgs[0][..]);
    assert_eq!(&tx[msgs[0].len()..kept], &msgs[2][..]);
    assert!(
        filled >= tx.as_ptr() && filled < tx.as_ptr().wrapping_add(tx.len()),
        "checked in place"
    );
    assert_eq!(ch.queued(), 0);
    // Nothing queued: nothing traded, the drained buffer stays.
    assert_eq!(tx.refill(&ch, |_| true), 0);
    assert_eq!(tx.len(), 1024);
    tx.drained(&ch);
    assert!(tx.is_empty(), "given back");
}

/// Polls a future that must complete at once.
fn futures_now<F: std::future::Future>(f: F) -> F::Output {
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    match std::pin::pin!(f).poll(&mut cx) {
        std::task::Poll::Ready(v) => v,
        std::task::Poll::Pending => panic!("would wait"),
    }
}
