//! embassy-net stacks linked in memory through `embassy-net-driver-channel`
//! devices and a hub that copies every packet to every other port (IP medium:
//! no ARP; a stack drops packets not addressed to it).

use std::cell::{Cell, RefCell};
use std::future::Future;

use embassy_futures::join::{join, join_array};
use embassy_net::driver::{HardwareAddress, LinkState};
use embassy_net::{
    Config, ConfigV6, Ipv4Address, Ipv4Cidr, Ipv6Address, Ipv6Cidr, Stack, StackResources,
    StaticConfigV4, StaticConfigV6,
};
use embassy_net_driver_channel as ch;

/// MTU of the in-memory links.
pub const MTU: usize = 1500;
/// Socket entries per stack.
pub const SOCKETS: usize = 4;
/// Channel state of one port: 8 RX and 8 TX packets.
pub type PortState = ch::State<MTU, 8, 8>;

/// Memory of an N-port LAN; keep it alive as long as the stacks.
pub struct LanMemory<const N: usize> {
    ports: [PortState; N],
    resources: [StackResources<SOCKETS>; N],
    cut: Cell<bool>,
}

impl<const N: usize> LanMemory<N> {
    /// Fresh memory.
    pub fn new() -> Box<Self> {
        Box::new(Self {
            ports: std::array::from_fn(|_| PortState::new()),
            resources: std::array::from_fn(|_| StackResources::new()),
            cut: Cell::new(false),
        })
    }
}

/// IPv4 10.0.0.`host`/24 and IPv6 fd00::`host`/64.
pub fn host_config(host: u8) -> Config {
    let mut c = Config::ipv4_static(StaticConfigV4 {
        address: Ipv4Cidr::new(Ipv4Address::new(10, 0, 0, host), 24),
        gateway: None,
        dns_servers: Default::default(),
    });
    c.ipv6 = ConfigV6::Static(StaticConfigV6 {
        address: Ipv6Cidr::new(v6(host), 64),
        gateway: None,
        dns_servers: Default::default(),
    });
    c
}

/// fd00::`host`.
pub fn v6(host: u8) -> Ipv6Address {
    Ipv6Address::new(0xfd00, 0, 0, 0, 0, 0, 0, u16::from(host))
}

/// N stacks, stack i at host address `hosts[i]`, on one in-memory hub. The
/// returned future runs the stacks and the hub; it never completes, so
/// `select` it with the test body. Setting the returned cell cuts the wire
/// (the hub drops every packet) until it is cleared.
pub fn lan<'a, const N: usize>(
    mem: &'a mut LanMemory<N>,
    hosts: [u8; N],
) -> (
    [Stack<'a>; N],
    impl Future<Output = ()> + 'a,
    &'a Cell<bool>,
) {
    let LanMemory {
        ports,
        resources,
        cut,
    } = mem;
    let cut: &'a Cell<bool> = cut;
    let mut stacks = Vec::new();
    let mut runners = Vec::new();
    let mut rxs = Vec::new();
    let mut txs = Vec::new();
    for ((port, res), host) in ports.iter_mut().zip(resources.iter_mut()).zip(hosts) {
        let (runner, device) = ch::new(port, HardwareAddress::Ip);
        let (state, rx, tx) = runner.split();
        state.set_link_state(LinkState::Up); // channel devices start Down
        let seed = 0x5eed_0000 + u64::from(host);
        let (stack, net_runner) = embassy_net::new(device, host_config(host), res, seed);
        stacks.push(stack);
        runners.push(net_runner);
        rxs.push(rx);
        txs.push(tx);
    }
    let stacks: [Stack<'a>; N] = stacks.try_into().ok().expect("N stacks");
    let runners: [_; N] = runners.try_into().ok().expect("N runners");
    let rxs: [ch::RxRunner<'a, MTU>; N] = rxs.try_into().ok().expect("N rx");
    let txs: [ch::TxRunner<'a, MTU>; N] = txs.try_into().ok().expect("N tx");
    let fut = async move {
        let runs = join_array(runners.map(|mut r| async move { r.run().await }));
        join(runs, hub(txs, rxs, cut)).await;
    };
    (stacks, fut, cut)
}

/// Copies each packet a port sends to every other port's RX queue, dropping
/// it where the queue is full (TCP retransmits): never block on a receiver,
/// or two full queues deadlock.
async fn hub<'a, const N: usize>(
    txs: [ch::TxRunner<'a, MTU>; N],
    rxs: [ch::RxRunner<'a, MTU>; N],
    cut: &'a Cell<bool>,
) {
    let rxs = RefCell::new(rxs);
    let rxs = &rxs;
    let mut idx = 0;
    let ports = txs.map(|mut tx| {
        let me = idx;
        idx += 1;
        async move {
            loop {
                let pkt = tx.tx_buf().await;
                let n = pkt.len();
                if cut.get() {
                    tx.tx_done();
                    continue;
                }
                for (j, rx) in rxs.borrow_mut().iter_mut().enumerate() {
                    if j == me {
                        continue;
                    }
                    if let Some(dst) = rx.try_rx_buf() {
                        dst[..n].copy_from_slice(pkt);
                        rx.rx_done(n);
                    }
                }
                tx.tx_done();
            }
        }
    });
    join_array(ports).await;
}
