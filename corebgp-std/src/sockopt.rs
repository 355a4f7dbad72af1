//! Socket options no safe crate offers (checked: socket2 0.6, rustix 1.1
//! and nix have neither `TCP_MD5SIG` nor `IP_MINTTL`/`IPV6_MINHOPCOUNT`):
//! one `setsockopt` call each, behind safe functions taking a borrowed
//! descriptor. With [`crate::pages`], the only `unsafe` of the crate is
//! [`setsockopt`].

use std::io;
use std::net::IpAddr;
use std::os::fd::{AsRawFd, BorrowedFd};

/// `struct sockaddr_storage` (128 bytes, pointer-aligned).
#[repr(C, align(8))]
struct SockStorage([u8; 128]);

/// `struct tcp_md5sig` of `linux/tcp.h`.
#[repr(C)]
struct TcpMd5Sig {
    addr: SockStorage,
    flags: u8,
    prefixlen: u8,
    keylen: u16,
    ifindex: libc::c_int,
    key: [u8; crate::options::MD5_MAX_KEY_LEN],
}

/// Sets one option from a plain-old-data value.
#[allow(unsafe_code)]
fn setsockopt<T>(
    fd: BorrowedFd<'_>,
    level: libc::c_int,
    name: libc::c_int,
    v: &T,
) -> io::Result<()> {
    let len = libc::socklen_t::try_from(size_of::<T>())
        .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    // SAFETY: `fd` is a live descriptor for the borrow's duration; the
    // kernel reads exactly `len` bytes from `v`, which points to a `T` of
    // that size, and keeps no pointer to it after the call.
    let r = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            level,
            name,
            (v as *const T).cast::<libc::c_void>(),
            len,
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Sets (or, with an empty key, removes) the RFC 2385 key for segments
/// exchanged with `peer` on `fd`. `v6_socket`: the socket is AF_INET6
/// (an IPv4 peer is then written as an IPv4-mapped address, the form a
/// dual-stack socket sees).
pub(crate) fn set_md5(
    fd: BorrowedFd<'_>,
    v6_socket: bool,
    peer: IpAddr,
    key: &[u8],
) -> io::Result<()> {
    let mut sig = TcpMd5Sig {
        addr: SockStorage([0; 128]),
        flags: 0,
        prefixlen: 0,
        keylen: 0,
        ifindex: 0,
        key: [0; crate::options::MD5_MAX_KEY_LEN],
    };
    let k = sig
        .key
        .get_mut(..key.len())
        .ok_or_else(|| io::Error::from(io::ErrorKind::InvalidInput))?;
    k.copy_from_slice(key);
    sig.keylen = key.len() as u16;
    let a = &mut sig.addr.0;
    match (v6_socket, peer) {
        (false, IpAddr::V4(v4)) => {
            // struct sockaddr_in: family, port, address.
            a[..2].copy_from_slice(&(libc::AF_INET as u16).to_ne_bytes());
            a[4..8].copy_from_slice(&v4.octets());
        }
        (true, ip) => {
            // struct sockaddr_in6: family, port, flowinfo, address, scope.
            let v6 = match ip {
                IpAddr::V4(v4) => v4.to_ipv6_mapped(),
                IpAddr::V6(v6) => v6,
            };
            a[..2].copy_from_slice(&(libc::AF_INET6 as u16).to_ne_bytes());
            a[8..24].copy_from_slice(&v6.octets());
        }
        (false, IpAddr::V6(_)) => return Err(io::Error::from(io::ErrorKind::InvalidInput)),
    }
    setsockopt(fd, libc::IPPROTO_TCP, libc::TCP_MD5SIG, &sig)
}

/// GTSM receive side (RFC 5082 §3): drop segments arriving with a TTL
/// (hop limit) below `min`. `v4`: the traffic is IPv4 (also on an
/// AF_INET6 socket carrying IPv4-mapped traffic).
pub(crate) fn set_min_ttl(fd: BorrowedFd<'_>, v4: bool, min: u8) -> io::Result<()> {
    let v = libc::c_int::from(min);
    if v4 {
        setsockopt(fd, libc::IPPROTO_IP, libc::IP_MINTTL, &v)
    } else {
        setsockopt(fd, libc::IPPROTO_IPV6, libc::IPV6_MINHOPCOUNT, &v)
    }
}

/// GTSM send side: TTL (hop limit) of our segments.
pub(crate) fn set_ttl(fd: BorrowedFd<'_>, v4: bool, ttl: u8) -> io::Result<()> {
    let v = libc::c_int::from(ttl);
    if v4 {
        setsockopt(fd, libc::IPPROTO_IP, libc::IP_TTL, &v)
    } else {
        setsockopt(fd, libc::IPPROTO_IPV6, libc::IPV6_UNICAST_HOPS, &v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsFd;

    #[test]
    fn md5_struct_has_the_kernel_layout() {
        assert_eq!(size_of::<TcpMd5Sig>(), 216);
    }

    #[test]
    fn options_apply_to_real_sockets() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let fd = l.as_fd();
        set_md5(fd, false, "127.0.0.2".parse().unwrap(), b"secret").unwrap();
        set_md5(fd, false, "127.0.0.2".parse().unwrap(), b"").unwrap();
        set_min_ttl(fd, true, 254).unwrap();
        set_ttl(fd, true, 255).unwrap();
        assert!(set_md5(fd, false, "::1".parse().unwrap(), b"x").is_err());
        let l6 = std::net::TcpListener::bind("[::1]:0").unwrap();
        set_md5(l6.as_fd(), true, "127.0.0.2".parse().unwrap(), b"secret").unwrap();
        set_md5(l6.as_fd(), true, "::2".parse().unwrap(), b"secret").unwrap();
        set_min_ttl(l6.as_fd(), false, 254).unwrap();
        set_ttl(l6.as_fd(), false, 255).unwrap();
    }
}
