//! What `announcer` announces: the route syntax (command line and
//! `--file`), the table and its differences on reload, the attributes a
//! route gets on one session, the UPDATEs that carry them, the host's
//! global IPv6 address and the health check's rise/fall counter.
//!
//! Everything here is plain data and functions (no I/O but reading the
//! route file and `/proc/net/if_inet6`), so the integration tests include
//! this file and run its unit tests: it depends on `std` and
//! `corebgp_std` only.
//!
//! The route syntax, one route per line in a file:
//!
//! ```text
//! # comment
//! 192.0.2.0/24
//! 198.51.100.0/24 next-hop 192.0.2.1 communities 65001:1,65001:2 med 10
//! 2001:db8:1::/48 large-communities 65001:1:2 as-path "65001 65002" local-pref 200
//! ```
//!
//! Keywords: `next-hop ADDRESS|self`, `communities C[,C…]` (`ASN:VALUE` or
//! a well-known name: `no-export`, `no-advertise`, `no-export-subconfed`,
//! `nopeer`, `blackhole`, `graceful-shutdown`), `large-communities
//! A:B:C[,…]`, `med N`, `local-pref N`, `as-path "ASN ASN…"`. The
//! singular forms (`community`, `large-community`) and `local-preference`
//! are accepted too; list values may be separated by commas or spaces, be
//! quoted or be in `[ ]` brackets (ExaBGP's style).

#![allow(dead_code)] // the tests use what the tool does not, and the reverse

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::Path;

use corebgp_std::core::update::{
    AsSegment, Community, Ipv4Prefix, Ipv6Prefix, LargeCommunity, NextHop, Nlri, Origin,
    PathAttributes, Prefix, SegmentType, UpdateBuilder, UpdateConfig, encode_end_of_rib,
};
use corebgp_std::core::wire::AfiSafi;

/// LOCAL_PREF sent to internal peers when a route gives none.
pub const DEFAULT_LOCAL_PREF: u32 = 100;

/// One route as configured.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Route {
    pub prefix: Prefix,
    /// `None`: the session's (see [`NextHops`]).
    pub next_hop: Option<IpAddr>,
    /// The path as given, without our AS (prepended for external peers).
    pub as_path: Vec<u32>,
    pub med: Option<u32>,
    pub local_pref: Option<u32>,
    pub communities: Vec<Community>,
    pub large_communities: Vec<LargeCommunity>,
}

impl Route {
    /// A route to `prefix` with no attribute given.
    pub fn new(prefix: Prefix) -> Self {
        Self {
            prefix,
            next_hop: None,
            as_path: Vec::new(),
            med: None,
            local_pref: None,
            communities: Vec::new(),
            large_communities: Vec::new(),
        }
    }

    /// IPv4 or IPv6 unicast.
    pub fn family(&self) -> AfiSafi {
        family_of(&self.prefix)
    }
}

/// The unicast family of a prefix.
pub fn family_of(p: &Prefix) -> AfiSafi {
    if p.is_ipv6() {
        AfiSafi::IPV6_UNICAST
    } else {
        AfiSafi::IPV4_UNICAST
    }
}

impl fmt::Display for Route {
    /// The route in the syntax it is read in.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.prefix)?;
        if let Some(n) = self.next_hop {
            write!(f, " next-hop {n}")?;
        }
        if !self.as_path.is_empty() {
            let p: Vec<String> = self.as_path.iter().map(u32::to_string).collect();
            write!(f, " as-path \"{}\"", p.join(" "))?;
        }
        if let Some(m) = self.med {
            write!(f, " med {m}")?;
        }
        if let Some(l) = self.local_pref {
            write!(f, " local-pref {l}")?;
        }
        if !self.communities.is_empty() {
            let c: Vec<String> = self
                .communities
                .iter()
                .map(|c| format!("{}:{}", c.asn(), c.value()))
                .collect();
            write!(f, " communities {}", c.join(","))?;
        }
        if !self.large_communities.is_empty() {
            let c: Vec<String> = self
                .large_communities
                .iter()
                .map(|c| format!("{}:{}:{}", c.global_admin, c.local_data1, c.local_data2))
                .collect();
            write!(f, " large-communities {}", c.join(","))?;
        }
        Ok(())
    }
}

/// The routes by prefix (one path per prefix: no ADD-PATH).
pub type Table = BTreeMap<Prefix, Route>;

/// `192.0.2.0/24` or `2001:db8::/48`; host bits set are an error (a typo
/// more often than not), naming the prefix meant.
pub fn parse_prefix(s: &str) -> Result<Prefix, String> {
    let Some((addr, len)) = s.split_once('/') else {
        return Err(format!(
            "'{s}' is not a prefix (ADDRESS/LENGTH, e.g. 192.0.2.0/24)"
        ));
    };
    let addr: IpAddr = addr
        .parse()
        .map_err(|_| format!("'{s}' is not a prefix: '{addr}' is not an IP address"))?;
    let len: u8 = len
        .parse()
        .map_err(|_| format!("'{s}' is not a prefix: '{len}' is not a prefix length"))?;
    let (prefix, network) = match addr {
        IpAddr::V4(a) => {
            let p = Ipv4Prefix::new(a, len)
                .ok_or_else(|| format!("'{s}': an IPv4 prefix length is 0 to 32"))?;
            (Prefix::V4(p), IpAddr::V4(p.addr()))
        }
        IpAddr::V6(a) => {
            let p = Ipv6Prefix::new(a, len)
                .ok_or_else(|| format!("'{s}': an IPv6 prefix length is 0 to 128"))?;
            (Prefix::V6(p), IpAddr::V6(p.addr()))
        }
    };
    if network != addr {
        return Err(format!(
            "'{s}' has host bits set (did you mean {network}/{len}?)"
        ));
    }
    Ok(prefix)
}

/// One word of a route: the text, and whether it was quoted.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Token {
    text: String,
    quoted: bool,
}

/// Splits a route's text into words: whitespace separates, `"…"` groups,
/// `#` starts a comment.
fn tokenize(s: &str, out: &mut Vec<Token>) -> Result<(), String> {
    let mut chars = s.chars().peekable();
    while let Some(&c) = chars.peek() {
        if c.is_whitespace() {
            chars.next();
        } else if c == '#' {
            break;
        } else if c == '"' {
            chars.next();
            let mut text = String::new();
            loop {
                match chars.next() {
                    Some('"') => break,
                    Some(c) => text.push(c),
                    None => return Err("a quote (\") is not closed".into()),
                }
            }
            out.push(Token { text, quoted: true });
        } else {
            let mut text = String::new();
            while let Some(&c) = chars.peek() {
                if c.is_whitespace() || c == '"' || c == '#' {
                    break;
                }
                text.push(c);
                chars.next();
            }
            out.push(Token {
                text,
                quoted: false,
            });
        }
    }
    Ok(())
}

/// The keywords of the syntax.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Keyword {
    NextHop,
    Communities,
    LargeCommunities,
    Med,
    LocalPref,
    AsPath,
}

impl Keyword {
    fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "next-hop" => Self::NextHop,
            "communities" | "community" => Self::Communities,
            "large-communities" | "large-community" => Self::LargeCommunities,
            "med" => Self::Med,
            "local-pref" | "local-preference" => Self::LocalPref,
            "as-path" => Self::AsPath,
            _ => return None,
        })
    }

    fn name(self) -> &'static str {
        match self {
            Self::NextHop => "next-hop",
            Self::Communities => "communities",
            Self::LargeCommunities => "large-communities",
            Self::Med => "med",
            Self::LocalPref => "local-pref",
            Self::AsPath => "as-path",
        }
    }

    /// Takes a list of values (communities, AS path).
    fn is_list(self) -> bool {
        matches!(
            self,
            Self::Communities | Self::LargeCommunities | Self::AsPath
        )
    }
}

/// An AS number: plain or asdot (RFC 5396); AS 0 is refused.
pub fn parse_asn(s: &str) -> Result<u32, String> {
    let n = match s.split_once('.') {
        Some((hi, lo)) => match (hi.parse::<u16>(), lo.parse::<u16>()) {
            (Ok(hi), Ok(lo)) => (u32::from(hi) << 16) | u32::from(lo),
            _ => return Err(format!("'{s}' is not an AS number")),
        },
        None => s
            .parse::<u32>()
            .map_err(|_| format!("'{s}' is not an AS number"))?,
    };
    if n == 0 {
        return Err("AS 0 is reserved (RFC 7607)".into());
    }
    Ok(n)
}

/// `65001:1` or a well-known name (RFC 1997, 3765, 7999, 8326).
pub fn parse_community(s: &str) -> Result<Community, String> {
    let named = match s.to_ascii_lowercase().as_str() {
        "no-export" => Some(Community::NO_EXPORT),
        "no-advertise" => Some(Community::NO_ADVERTISE),
        "no-export-subconfed" => Some(Community::NO_EXPORT_SUBCONFED),
        "nopeer" | "no-peer" => Some(Community::NO_PEER),
        "blackhole" => Some(Community::BLACKHOLE),
        "graceful-shutdown" => Some(Community::GRACEFUL_SHUTDOWN),
        _ => None,
    };
    if let Some(c) = named {
        return Ok(c);
    }
    let bad = || {
        format!(
            "'{s}' is not a community (ASN:VALUE, each 0 to 65535; large-communities take A:B:C)"
        )
    };
    let (a, v) = s.split_once(':').ok_or_else(bad)?;
    let a: u16 = a.parse().map_err(|_| bad())?;
    let v: u16 = v.parse().map_err(|_| bad())?;
    Ok(Community::new(a, v))
}

/// `65001:1:2` (RFC 8092).
pub fn parse_large_community(s: &str) -> Result<LargeCommunity, String> {
    let bad = || format!("'{s}' is not a large community (A:B:C, each 0 to 4294967295)");
    let mut it = s.split(':');
    let mut next = || -> Result<u32, String> {
        it.next()
            .ok_or_else(bad)
            .and_then(|x| x.parse().map_err(|_| bad()))
    };
    let c = LargeCommunity {
        global_admin: next()?,
        local_data1: next()?,
        local_data2: next()?,
    };
    if it.next().is_some() {
        return Err(bad());
    }
    Ok(c)
}

fn parse_u32(kw: Keyword, s: &str) -> Result<u32, String> {
    s.parse()
        .map_err(|_| format!("{} '{s}' is not a number from 0 to 4294967295", kw.name()))
}

/// The items of one list token: split at commas and whitespace, brackets
/// dropped.
fn items(t: &str) -> impl Iterator<Item = &str> {
    t.split(|c: char| c == ',' || c.is_whitespace() || c == '[' || c == ']')
        .filter(|s| !s.is_empty())
}

/// Whether an unquoted token continues a list of `kw`'s values.
fn continues_list(kw: Keyword, t: &Token) -> bool {
    if t.quoted {
        return true;
    }
    let text = t.text.as_str();
    if Keyword::parse(text).is_some() {
        return false;
    }
    // Separators alone, or values of the list's kind (never a prefix:
    // a prefix has a '/', no value has).
    if items(text).next().is_none() {
        return true;
    }
    !text.contains('/')
        && match kw {
            Keyword::AsPath => items(text).all(|i| parse_asn(i).is_ok()),
            Keyword::Communities => items(text).all(|i| parse_community(i).is_ok()),
            Keyword::LargeCommunities => items(text).all(|i| parse_large_community(i).is_ok()),
            _ => false,
        }
}

/// Reads routes from `tokens`: each starts with a prefix, followed by
/// keywords with their values. `one` asks for exactly one route (a line of
/// a file).
fn parse_tokens(tokens: &[Token], one: bool) -> Result<Vec<Route>, String> {
    let mut routes: Vec<Route> = Vec::new();
    let mut i = 0;
    while i < tokens.len() {
        let t = &tokens[i];
        i += 1;
        let prefix = match parse_prefix(&t.text) {
            Ok(p) => p,
            Err(e) if routes.is_empty() || !t.text.contains('/') => {
                return Err(if routes.is_empty() {
                    e
                } else {
                    format!(
                        "unexpected '{}' (not a keyword: next-hop, communities, large-communities, med, local-pref, as-path)",
                        t.text
                    )
                });
            }
            Err(e) => return Err(e),
        };
        if one && !routes.is_empty() {
            return Err(format!(
                "one route per line: '{}' starts a second one",
                t.text
            ));
        }
        let mut r = Route::new(prefix);
        let mut seen: Vec<Keyword> = Vec::new();
        while let Some(t) = tokens.get(i) {
            let Some(kw) = Keyword::parse(&t.text).filter(|_| !t.quoted) else {
                break;
            };
            i += 1;
            if seen.contains(&kw) {
                return Err(format!("{prefix}: {} is given twice", kw.name()));
            }
            seen.push(kw);
            let Some(v) = tokens.get(i) else {
                return Err(format!("{prefix}: {} needs a value", kw.name()));
            };
            if Keyword::parse(&v.text).is_some() && !v.quoted {
                return Err(format!("{prefix}: {} needs a value", kw.name()));
            }
            i += 1;
            let mut values: Vec<&str> = items(&v.text).collect();
            if kw.is_list() {
                while let Some(more) = tokens.get(i).filter(|t| continues_list(kw, t)) {
                    values.extend(items(&more.text));
                    i += 1;
                }
            }
            let single = || -> Result<&str, String> {
                match values.as_slice() {
                    [one] => Ok(one),
                    _ => Err(format!(
                        "{prefix}: {} takes one value, not '{}'",
                        kw.name(),
                        v.text
                    )),
                }
            };
            match kw {
                Keyword::NextHop => {
                    let s = single()?;
                    if s == "self" {
                        continue;
                    }
                    let a: IpAddr = s.parse().map_err(|_| {
                        format!("{prefix}: next-hop '{s}' is not an IP address (or 'self')")
                    })?;
                    let a = a.to_canonical();
                    if a.is_unspecified() || a.is_multicast() {
                        return Err(format!("{prefix}: next-hop {a} is not a usable next hop"));
                    }
                    if prefix.is_ipv6() && a.is_ipv4() {
                        return Err(format!(
                            "{prefix}: an IPv6 route needs an IPv6 next hop, not {a}"
                        ));
                    }
                    r.next_hop = Some(a);
                }
                Keyword::Med => r.med = Some(parse_u32(kw, single()?)?),
                Keyword::LocalPref => r.local_pref = Some(parse_u32(kw, single()?)?),
                Keyword::AsPath => {
                    for s in &values {
                        r.as_path
                            .push(parse_asn(s).map_err(|e| format!("{prefix}: as-path: {e}"))?);
                    }
                }
                Keyword::Communities => {
                    if values.is_empty() {
                        return Err(format!("{prefix}: communities needs a value"));
                    }
                    for s in &values {
                        let c = parse_community(s).map_err(|e| format!("{prefix}: {e}"))?;
                        if !r.communities.contains(&c) {
                            r.communities.push(c);
                        }
                    }
                }
                Keyword::LargeCommunities => {
                    if values.is_empty() {
                        return Err(format!("{prefix}: large-communities needs a value"));
                    }
                    for s in &values {
                        let c = parse_large_community(s).map_err(|e| format!("{prefix}: {e}"))?;
                        if !r.large_communities.contains(&c) {
                            r.large_communities.push(c);
                        }
                    }
                }
            }
        }
        routes.push(r);
    }
    Ok(routes)
}

/// Parses one route (`PREFIX [KEYWORD VALUE]…`).
pub fn parse_route(s: &str) -> Result<Route, String> {
    let mut tokens = Vec::new();
    tokenize(s, &mut tokens)?;
    if tokens.is_empty() {
        return Err("empty route".into());
    }
    let mut v = parse_tokens(&tokens, true)?;
    v.pop().ok_or_else(|| "empty route".into())
}

/// The routes of the command line: each argument is a word or a whole
/// quoted route; a route starts at each prefix, so both `'192.0.2.0/24
/// med 10'` and `192.0.2.0/24 med 10` work.
pub fn parse_arguments(args: &[String]) -> Result<Vec<Route>, String> {
    let mut tokens = Vec::new();
    for a in args {
        tokenize(a, &mut tokens).map_err(|e| format!("route argument '{a}': {e}"))?;
    }
    parse_tokens(&tokens, false)
}

/// A route file's text; errors are `NAME:LINE: what`.
pub fn parse_file_text(name: &str, text: &str) -> Result<Vec<Route>, String> {
    let mut out = Vec::new();
    let mut lines: HashMap<Prefix, usize> = HashMap::new();
    for (n, line) in text.lines().enumerate() {
        let n = n + 1;
        let mut tokens = Vec::new();
        tokenize(line, &mut tokens).map_err(|e| format!("{name}:{n}: {e}"))?;
        if tokens.is_empty() {
            continue;
        }
        let routes = parse_tokens(&tokens, true).map_err(|e| format!("{name}:{n}: {e}"))?;
        for r in routes {
            if let Some(first) = lines.insert(r.prefix, n) {
                return Err(format!(
                    "{name}:{n}: {} is already on line {first} (one path per prefix)",
                    r.prefix
                ));
            }
            out.push(r);
        }
    }
    Ok(out)
}

/// Why a route file could not be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileError {
    /// Not readable (a runtime error).
    Unreadable(String),
    /// A bad line (a usage error).
    Invalid(String),
}

impl fmt::Display for FileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Unreadable(s) | Self::Invalid(s) => f.write_str(s),
        }
    }
}

/// Reads a route file.
pub fn read_file(path: &Path) -> Result<Vec<Route>, FileError> {
    let name = path.display().to_string();
    let text = std::fs::read_to_string(path)
        .map_err(|e| FileError::Unreadable(format!("cannot read {name}: {e}")))?;
    parse_file_text(&name, &text).map_err(FileError::Invalid)
}

/// The table of the command line's routes plus the file's; a prefix given
/// in both (or twice) is an error.
pub fn table(args: &[Route], file: &[Route]) -> Result<Table, String> {
    let mut t = Table::new();
    for r in args.iter().chain(file) {
        if t.insert(r.prefix, r.clone()).is_some() {
            return Err(format!("{} is given twice (one path per prefix)", r.prefix));
        }
    }
    Ok(t)
}

/// What changed between two tables.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Diff {
    /// New prefixes and prefixes whose attributes changed.
    pub announce: Vec<Prefix>,
    /// Prefixes no longer there.
    pub withdraw: Vec<Prefix>,
    pub unchanged: usize,
}

/// The difference from `old` to `new`.
pub fn diff(old: &Table, new: &Table) -> Diff {
    let mut d = Diff::default();
    for (p, r) in new {
        match old.get(p) {
            Some(o) if o == r => d.unchanged += 1,
            _ => d.announce.push(*p),
        }
    }
    d.withdraw = old
        .keys()
        .filter(|p| !new.contains_key(p))
        .copied()
        .collect();
    d
}

/// The default next hops of one session, per family; `Err` says why there
/// is none (logged for the routes that need it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NextHops {
    pub v4: Result<NextHop, String>,
    pub v6: Result<NextHop, String>,
}

impl NextHops {
    /// The defaults: `--next-hop4`/`--next-hop6` when given; else for IPv4
    /// routes the session's local address, or on an IPv6 session its IPv6
    /// address as an RFC 8950 next hop where negotiated; for IPv6 routes
    /// the session's IPv6 local address, or on an IPv4 session the host's
    /// global IPv6 address.
    pub fn for_session(
        local: Option<IpAddr>,
        flag4: Option<Ipv4Addr>,
        flag6: Option<Ipv6Addr>,
        host6: Option<Ipv6Addr>,
        extended_v4: bool,
    ) -> Self {
        let v6nh = |a: Ipv6Addr| NextHop::V6 {
            global: a,
            link_local: None,
        };
        let v4 = match (flag4, local) {
            (Some(a), _) => Ok(NextHop::V4(a)),
            (None, Some(IpAddr::V4(a))) => Ok(NextHop::V4(a)),
            (None, Some(IpAddr::V6(a))) if extended_v4 => Ok(v6nh(a)),
            (None, Some(IpAddr::V6(_))) => Err(
                "no IPv4 next hop: the session is IPv6 and the peer did not negotiate \
                 extended next hop (RFC 8950); give --next-hop4 or next-hop in the route"
                    .to_string(),
            ),
            (None, None) => Err(
                "no IPv4 next hop: the session's local address is unknown; give \
                 --next-hop4 or next-hop in the route"
                    .to_string(),
            ),
        };
        let v6 = match (flag6, local) {
            (Some(a), _) => Ok(v6nh(a)),
            (None, Some(IpAddr::V6(a))) => Ok(v6nh(a)),
            (None, _) => match host6 {
                Some(a) => Ok(v6nh(a)),
                None => Err(
                    "no IPv6 next hop: the session is IPv4 and the host has no global IPv6 \
                     address; give --next-hop6 or next-hop in the route"
                        .to_string(),
                ),
            },
        };
        Self { v4, v6 }
    }
}

/// Who we send to, as far as the attributes care.
#[derive(Debug, Clone)]
pub struct SessionParams {
    pub local_as: u32,
    /// An internal peer: no AS prepended, LOCAL_PREF sent.
    pub ibgp: bool,
    pub next_hops: NextHops,
    /// The negotiated codec settings (AS size, message size, RFC 8950).
    pub cfg: UpdateConfig,
}

/// The attributes a route goes out with on one session (owned, so routes
/// with equal ones share UPDATEs).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Attrs {
    pub family: AfiSafi,
    pub next_hop: NextHop,
    pub as_path: Vec<u32>,
    pub med: Option<u32>,
    pub local_pref: Option<u32>,
    pub communities: Vec<Community>,
    pub large_communities: Vec<LargeCommunity>,
}

/// The attributes of `r` on a session: our AS prepended for an external
/// peer (unless the path starts with it), LOCAL_PREF only for an internal
/// one (default [`DEFAULT_LOCAL_PREF`]), the next hop given or the
/// session's.
pub fn attributes(r: &Route, s: &SessionParams) -> Result<Attrs, String> {
    let family = r.family();
    let next_hop = match r.next_hop {
        Some(IpAddr::V4(a)) => NextHop::V4(a),
        Some(IpAddr::V6(a)) => NextHop::V6 {
            global: a,
            link_local: None,
        },
        None if r.prefix.is_ipv6() => s.next_hops.v6.clone()?,
        None => s.next_hops.v4.clone()?,
    };
    match (r.prefix.is_ipv6(), next_hop) {
        (true, NextHop::V4(a)) => {
            return Err(format!("an IPv6 route cannot have the IPv4 next hop {a}"));
        }
        (false, NextHop::V6 { global, .. }) if !s.cfg.extended_next_hop.contains(family) => {
            return Err(format!(
                "the IPv6 next hop {global} needs extended next hop (RFC 8950), which the \
                 peer did not negotiate for IPv4 unicast"
            ));
        }
        _ => {}
    }
    let mut as_path = Vec::with_capacity(r.as_path.len() + 1);
    if !s.ibgp && r.as_path.first() != Some(&s.local_as) {
        as_path.push(s.local_as);
    }
    as_path.extend_from_slice(&r.as_path);
    Ok(Attrs {
        family,
        next_hop,
        as_path,
        med: r.med,
        local_pref: if s.ibgp {
            Some(r.local_pref.unwrap_or(DEFAULT_LOCAL_PREF))
        } else {
            None
        },
        communities: r.communities.clone(),
        large_communities: r.large_communities.clone(),
    })
}

/// UPDATEs announcing some routes on one session.
#[derive(Debug, Default)]
pub struct Announcement {
    /// Whole UPDATE messages, in order.
    pub messages: Vec<Vec<u8>>,
    /// The prefixes they carry.
    pub sent: Vec<Prefix>,
    /// Routes that could not go out, and why.
    pub failed: Vec<(Prefix, String)>,
}

/// Packs `routes` into UPDATEs: routes with the same attributes share
/// messages, as many per message as fit the negotiated size.
pub fn build_announcements<'r>(
    routes: impl IntoIterator<Item = &'r Route>,
    s: &SessionParams,
) -> Announcement {
    let mut out = Announcement::default();
    // Groups in order of first appearance.
    let mut groups: Vec<(Attrs, Vec<Prefix>)> = Vec::new();
    let mut index: HashMap<Attrs, usize> = HashMap::new();
    for r in routes {
        match attributes(r, s) {
            Ok(a) => match index.get(&a) {
                Some(&i) => groups[i].1.push(r.prefix),
                None => {
                    index.insert(a.clone(), groups.len());
                    groups.push((a, vec![r.prefix]));
                }
            },
            Err(e) => out.failed.push((r.prefix, e)),
        }
    }
    let mut buf = vec![0u8; usize::from(s.cfg.max_message_len)];
    for (a, prefixes) in &groups {
        let seg = [AsSegment {
            kind: SegmentType::Sequence,
            asns: &a.as_path,
        }];
        let attrs = PathAttributes {
            origin: Some(Origin::Igp),
            as_path: Some(if a.as_path.is_empty() { &[] } else { &seg }),
            next_hop: Some(a.next_hop),
            med: a.med,
            local_pref: a.local_pref,
            communities: &a.communities,
            large_communities: &a.large_communities,
            ..Default::default()
        };
        let nlri: Vec<Nlri> = prefixes.iter().map(|p| Nlri::new(*p)).collect();
        let mut rest = &nlri[..];
        while !rest.is_empty() {
            let packed = UpdateBuilder::new(&mut buf, &s.cfg).and_then(|mut b| {
                let n = b.announce(&attrs, a.family, rest)?;
                Ok((n, b.finish()?))
            });
            match packed {
                Ok((n, len)) if n > 0 => {
                    out.messages.push(buf[..len].to_vec());
                    out.sent.extend(rest[..n].iter().map(|x| x.prefix));
                    rest = &rest[n..];
                }
                Ok(_) => {
                    // Not even one prefix fits next to the attributes.
                    let e = "the attributes leave no room for a prefix in an UPDATE".to_string();
                    out.failed
                        .extend(rest.iter().map(|x| (x.prefix, e.clone())));
                    break;
                }
                Err(e) => {
                    out.failed
                        .extend(rest.iter().map(|x| (x.prefix, e.to_string())));
                    break;
                }
            }
        }
    }
    out
}

/// UPDATEs withdrawing `prefixes` (IPv4 in Withdrawn Routes, IPv6 in
/// MP_UNREACH_NLRI), as many per message as fit.
pub fn build_withdrawals(prefixes: &[Prefix], cfg: &UpdateConfig) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut buf = vec![0u8; usize::from(cfg.max_message_len)];
    let v4: Vec<Nlri<Ipv4Prefix>> = prefixes
        .iter()
        .filter_map(|p| match p {
            Prefix::V4(p) => Some(Nlri::new(*p)),
            Prefix::V6(_) => None,
        })
        .collect();
    let v6: Vec<Nlri<Ipv6Prefix>> = prefixes
        .iter()
        .filter_map(|p| match p {
            Prefix::V6(p) => Some(Nlri::new(*p)),
            Prefix::V4(_) => None,
        })
        .collect();
    let mut rest = &v4[..];
    while !rest.is_empty() {
        let Ok(mut b) = UpdateBuilder::new(&mut buf, cfg) else {
            break;
        };
        let n = match b.withdraw(rest) {
            Ok(n) if n > 0 => n,
            _ => break,
        };
        let Ok(len) = b.finish() else { break };
        out.push(buf[..len].to_vec());
        rest = &rest[n..];
    }
    let mut rest = &v6[..];
    while !rest.is_empty() {
        let Ok(mut b) = UpdateBuilder::new(&mut buf, cfg) else {
            break;
        };
        let n = match b.withdraw_mp(AfiSafi::IPV6_UNICAST, rest) {
            Ok(n) if n > 0 => n,
            _ => break,
        };
        let Ok(len) = b.finish() else { break };
        out.push(buf[..len].to_vec());
        rest = &rest[n..];
    }
    out
}

/// The End-of-RIB marker of `family` (RFC 4724 §2).
pub fn end_of_rib(family: AfiSafi) -> Vec<u8> {
    let mut buf = [0u8; 64];
    match encode_end_of_rib(&mut buf, family) {
        Ok(n) => buf[..n].to_vec(),
        Err(_) => Vec::new(),
    }
}

/// The first global IPv6 address in `/proc/net/if_inet6`'s format
/// (address, ifindex, prefix length, scope, flags, name; hex), skipping
/// tentative, deprecated and failed-DAD addresses.
pub fn global_ipv6_in(text: &str) -> Option<Ipv6Addr> {
    const IFA_F_DADFAILED: u32 = 0x08;
    const IFA_F_DEPRECATED: u32 = 0x20;
    const IFA_F_TENTATIVE: u32 = 0x40;
    text.lines().find_map(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        let [addr, _, _, scope, flags, ..] = f.as_slice() else {
            return None;
        };
        let scope = u32::from_str_radix(scope, 16).ok()?;
        let flags = u32::from_str_radix(flags, 16).ok()?;
        if scope != 0 || flags & (IFA_F_DADFAILED | IFA_F_DEPRECATED | IFA_F_TENTATIVE) != 0 {
            return None;
        }
        let bits = u128::from_str_radix(addr, 16).ok()?;
        if addr.len() != 32 {
            return None;
        }
        let a = Ipv6Addr::from_bits(bits);
        (!a.is_loopback() && !a.is_unspecified() && !a.is_multicast()).then_some(a)
    })
}

/// The host's first global IPv6 address.
pub fn host_global_ipv6() -> Option<Ipv6Addr> {
    std::fs::read_to_string("/proc/net/if_inet6")
        .ok()
        .and_then(|t| global_ipv6_in(&t))
}

/// The health check's state: the first result decides; then `fall`
/// failures in a row take the routes down and `rise` successes in a row
/// bring them back.
#[derive(Debug, Clone)]
pub struct Health {
    pub rise: u32,
    pub fall: u32,
    /// `None` before the first result.
    pub up: Option<bool>,
    /// Results in a row against the current state.
    streak: u32,
}

/// A change of the health state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transition {
    pub up: bool,
    /// The checks in a row that led here.
    pub checks: u32,
}

impl Health {
    pub fn new(rise: u32, fall: u32) -> Self {
        Self {
            rise: rise.max(1),
            fall: fall.max(1),
            up: None,
            streak: 0,
        }
    }

    /// Records one result; returns the transition it causes, if any.
    pub fn record(&mut self, ok: bool) -> Option<Transition> {
        match self.up {
            None => {
                self.up = Some(ok);
                Some(Transition { up: ok, checks: 1 })
            }
            Some(up) if up == ok => {
                self.streak = 0;
                None
            }
            Some(up) => {
                self.streak += 1;
                let need = if up { self.fall } else { self.rise };
                if self.streak >= need {
                    let checks = self.streak;
                    self.up = Some(ok);
                    self.streak = 0;
                    Some(Transition { up: ok, checks })
                } else {
                    None
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use corebgp_std::core::update::Update;
    use corebgp_std::core::wire::Message;

    fn p(s: &str) -> Prefix {
        parse_prefix(s).unwrap()
    }

    #[test]
    fn prefixes() {
        assert_eq!(p("192.0.2.0/24").to_string(), "192.0.2.0/24");
        assert_eq!(p("2001:db8::/48").to_string(), "2001:db8::/48");
        assert_eq!(p("0.0.0.0/0").len(), 0);
        let e = parse_prefix("192.0.2.1/24").unwrap_err();
        assert!(e.contains("host bits") && e.contains("192.0.2.0/24"), "{e}");
        let e = parse_prefix("2001:db8::1/48").unwrap_err();
        assert!(e.contains("2001:db8::/48"), "{e}");
        assert!(
            parse_prefix("192.0.2.0/33")
                .unwrap_err()
                .contains("0 to 32")
        );
        assert!(parse_prefix("192.0.2.0").is_err());
        assert!(parse_prefix("banana/24").is_err());
        assert!(parse_prefix("192.0.2.0/x").is_err());
    }

    #[test]
    fn full_route_syntax() {
        let r = parse_route(
            "198.51.100.0/24 next-hop 192.0.2.1 communities 65001:1,65001:2 \
             large-communities 65001:1:2,65001:3:4 med 10 local-pref 200 as-path \"65010 65020\"",
        )
        .unwrap();
        assert_eq!(r.prefix, p("198.51.100.0/24"));
        assert_eq!(r.next_hop, Some("192.0.2.1".parse().unwrap()));
        assert_eq!(
            r.communities,
            [Community::new(65001, 1), Community::new(65001, 2)]
        );
        assert_eq!(r.large_communities.len(), 2);
        assert_eq!(r.large_communities[1].local_data2, 4);
        assert_eq!((r.med, r.local_pref), (Some(10), Some(200)));
        assert_eq!(r.as_path, [65010, 65020]);
        // Display writes the same syntax back.
        assert_eq!(parse_route(&r.to_string()).unwrap(), r);
    }

    #[test]
    fn list_forms() {
        let a = parse_route("192.0.2.0/24 communities 65001:1, 65001:2 no-export").unwrap();
        assert_eq!(
            a.communities,
            [
                Community::new(65001, 1),
                Community::new(65001, 2),
                Community::NO_EXPORT
            ]
        );
        let b = parse_route("192.0.2.0/24 community [ 65001:1 65001:2 no-export ] med 5").unwrap();
        assert_eq!(a.communities, b.communities);
        assert_eq!(b.med, Some(5));
        let c = parse_route("192.0.2.0/24 as-path 65001 65002 med 1").unwrap();
        assert_eq!(c.as_path, [65001, 65002]);
        let d = parse_route("192.0.2.0/24 as-path [65001 1.10]").unwrap();
        assert_eq!(d.as_path, [65001, 65546]);
        let e = parse_route("2001:db8::/32 next-hop self # comment").unwrap();
        assert_eq!(e.next_hop, None);
    }

    #[test]
    fn bad_routes() {
        for (text, want) in [
            ("192.0.2.0/24 med", "med needs a value"),
            ("192.0.2.0/24 med ten", "not a number"),
            ("192.0.2.0/24 med 1 med 2", "given twice"),
            ("192.0.2.0/24 colour blue", "unexpected 'colour'"),
            ("192.0.2.0/24 communities 70000:1", "not a community"),
            (
                "192.0.2.0/24 large-communities 1:2",
                "not a large community",
            ),
            ("192.0.2.0/24 as-path \"65001 x\"", "not an AS number"),
            ("192.0.2.0/24 as-path \"65001 0\"", "AS 0"),
            ("192.0.2.0/24 next-hop banana", "not an IP address"),
            ("192.0.2.0/24 next-hop 224.0.0.1", "not a usable next hop"),
            ("2001:db8::/32 next-hop 192.0.2.1", "IPv6 next hop"),
            ("192.0.2.0/24 as-path \"65001", "not closed"),
            ("192.0.2.0/24 198.51.100.0/24", "one route per line"),
            ("192.0.2.1/24", "host bits"),
        ] {
            let e = parse_route(text).unwrap_err();
            assert!(e.contains(want), "{text}: {e}");
        }
    }

    #[test]
    fn arguments() {
        let args: Vec<String> = [
            "192.0.2.0/24",
            "2001:db8::/48",
            "198.51.100.0/24 med 10",
            "203.0.113.0/24",
            "med",
            "20",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let r = parse_arguments(&args).unwrap();
        assert_eq!(r.len(), 4);
        assert_eq!(r[2].med, Some(10));
        assert_eq!(r[3].med, Some(20));
        let e = parse_arguments(&["banana".to_string()]).unwrap_err();
        assert!(e.contains("'banana' is not a prefix"), "{e}");
        // A shell-unquoted as-path: one argument with a space.
        let args: Vec<String> = ["192.0.2.0/24", "as-path", "65001 65002"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        // Each argument is split into words: the path's two ASNs continue it.
        assert_eq!(parse_arguments(&args).unwrap()[0].as_path, [65001, 65002]);
    }

    #[test]
    fn files() {
        let text = "# anycast\n\n192.0.2.0/24 med 10\n  2001:db8::/48   # v6\n";
        let r = parse_file_text("routes.txt", text).unwrap();
        assert_eq!(r.len(), 2);
        let e = parse_file_text("routes.txt", "192.0.2.0/24\n\n192.0.2.0/23 med x\n").unwrap_err();
        assert!(e.starts_with("routes.txt:3: "), "{e}");
        let e = parse_file_text("r", "192.0.2.0/24\n192.0.2.0/24 med 1\n").unwrap_err();
        assert!(e.starts_with("r:2: ") && e.contains("line 1"), "{e}");
        let e = read_file(Path::new("/nonexistent/routes.txt")).unwrap_err();
        assert!(matches!(e, FileError::Unreadable(_)), "{e}");
    }

    #[test]
    fn diffs() {
        let t = |rs: &[&str]| -> Table {
            table(
                &rs.iter()
                    .map(|r| parse_route(r).unwrap())
                    .collect::<Vec<_>>(),
                &[],
            )
            .unwrap()
        };
        let old = t(&["192.0.2.0/24", "198.51.100.0/24 med 1", "203.0.113.0/24"]);
        let new = t(&["192.0.2.0/24", "198.51.100.0/24 med 2", "2001:db8::/32"]);
        let d = diff(&old, &new);
        assert_eq!(d.unchanged, 1);
        assert_eq!(d.announce, [p("198.51.100.0/24"), p("2001:db8::/32")]);
        assert_eq!(d.withdraw, [p("203.0.113.0/24")]);
        assert!(
            table(
                &[Route::new(p("192.0.2.0/24"))],
                &[Route::new(p("192.0.2.0/24"))]
            )
            .is_err()
        );
    }

    fn session(ibgp: bool, local: &str) -> SessionParams {
        SessionParams {
            local_as: 65001,
            ibgp,
            next_hops: NextHops::for_session(Some(local.parse().unwrap()), None, None, None, false),
            cfg: UpdateConfig::new(),
        }
    }

    #[test]
    fn next_hops() {
        let v4: Ipv4Addr = "127.0.0.5".parse().unwrap();
        let v6: Ipv6Addr = "2001:db8::5".parse().unwrap();
        let n = NextHops::for_session(Some(IpAddr::V4(v4)), None, None, Some(v6), false);
        assert_eq!(n.v4, Ok(NextHop::V4(v4)));
        assert_eq!(
            n.v6,
            Ok(NextHop::V6 {
                global: v6,
                link_local: None
            })
        );
        let n = NextHops::for_session(Some(IpAddr::V4(v4)), None, None, None, false);
        assert!(n.v6.unwrap_err().contains("--next-hop6"));
        let n = NextHops::for_session(Some(IpAddr::V6(v6)), None, None, None, true);
        assert_eq!(
            n.v4,
            Ok(NextHop::V6 {
                global: v6,
                link_local: None
            })
        );
        let n = NextHops::for_session(Some(IpAddr::V6(v6)), None, None, None, false);
        assert!(n.v4.unwrap_err().contains("RFC 8950"));
        let flag: Ipv4Addr = "192.0.2.9".parse().unwrap();
        let n = NextHops::for_session(Some(IpAddr::V6(v6)), Some(flag), None, None, false);
        assert_eq!(n.v4, Ok(NextHop::V4(flag)));
    }

    #[test]
    fn as_path_and_local_pref() {
        let r = parse_route("192.0.2.0/24 as-path \"65010\"").unwrap();
        let a = attributes(&r, &session(false, "127.0.0.5")).unwrap();
        assert_eq!(a.as_path, [65001, 65010]);
        assert_eq!(a.local_pref, None);
        let r2 = parse_route("192.0.2.0/24 as-path \"65001 65010\" local-pref 50").unwrap();
        assert_eq!(
            attributes(&r2, &session(false, "127.0.0.5"))
                .unwrap()
                .as_path,
            [65001, 65010]
        );
        let a = attributes(&r, &session(true, "127.0.0.5")).unwrap();
        assert_eq!(
            (a.as_path.as_slice(), a.local_pref),
            (&[65010][..], Some(100))
        );
        let a = attributes(&r2, &session(true, "127.0.0.5")).unwrap();
        assert_eq!(a.local_pref, Some(50));
        let bare = Route::new(p("192.0.2.0/24"));
        assert!(
            attributes(&bare, &session(true, "127.0.0.5"))
                .unwrap()
                .as_path
                .is_empty()
        );
        // An IPv4 route with an IPv6 next hop, without RFC 8950.
        let r = parse_route("192.0.2.0/24 next-hop 2001:db8::1").unwrap();
        assert!(
            attributes(&r, &session(false, "127.0.0.5"))
                .unwrap_err()
                .contains("RFC 8950")
        );
        let mut s = session(false, "127.0.0.5");
        s.cfg.extended_next_hop = s.cfg.extended_next_hop.with(AfiSafi::IPV4_UNICAST);
        assert!(attributes(&r, &s).is_ok());
    }

    /// Announced prefixes with next hop and MED, withdrawn prefixes,
    /// End-of-RIB markers.
    type Decoded = (Vec<(String, String, Option<u32>)>, Vec<String>, usize);

    /// Decodes UPDATEs.
    fn decode(msgs: &[Vec<u8>]) -> Decoded {
        let (mut ann, mut wd, mut eor) = (Vec::new(), Vec::new(), 0);
        for m in msgs {
            let Message::Update(s) = Message::parse(m, 4096).unwrap() else {
                panic!("not an UPDATE")
            };
            let u = Update::from_sections(s, &UpdateConfig::new()).unwrap();
            if u.end_of_rib().is_some() {
                eor += 1;
                continue;
            }
            let nh = u
                .next_hop()
                .map(|a| a.to_string())
                .or_else(|| match u.mp_reach().and_then(|m| m.next_hop()) {
                    Some(NextHop::V6 { global, .. }) => Some(global.to_string()),
                    Some(NextHop::V4(a)) => Some(a.to_string()),
                    None => None,
                })
                .unwrap_or_default();
            for (_, n) in u.announced() {
                ann.push((n.prefix.to_string(), nh.clone(), u.med()));
            }
            for (_, n) in u.withdrawals() {
                wd.push(n.prefix.to_string());
            }
        }
        (ann, wd, eor)
    }

    #[test]
    fn packing_groups_equal_attributes() {
        let mut s = session(false, "127.0.0.5");
        s.next_hops.v6 = Ok(NextHop::V6 {
            global: "2001:db8::5".parse().unwrap(),
            link_local: None,
        });
        let routes: Vec<Route> = [
            "192.0.2.0/24",
            "198.51.100.0/24 med 5",
            "203.0.113.0/24",
            "2001:db8:1::/48",
            "2001:db8:2::/48",
        ]
        .iter()
        .map(|r| parse_route(r).unwrap())
        .collect();
        let a = build_announcements(&routes, &s);
        assert!(a.failed.is_empty(), "{:?}", a.failed);
        // Three groups: IPv4 without MED, IPv4 with MED 5, IPv6.
        assert_eq!(a.messages.len(), 3);
        assert_eq!(a.sent.len(), 5);
        let (ann, _, _) = decode(&a.messages);
        assert_eq!(ann[0], ("192.0.2.0/24".into(), "127.0.0.5".into(), None));
        assert_eq!(ann[1], ("203.0.113.0/24".into(), "127.0.0.5".into(), None));
        assert_eq!(
            ann[2],
            ("198.51.100.0/24".into(), "127.0.0.5".into(), Some(5))
        );
        assert_eq!(ann[4].1, "2001:db8::5");

        // Without an IPv6 next hop the IPv6 routes fail, the others go.
        let a = build_announcements(&routes, &session(false, "127.0.0.5"));
        assert_eq!(a.failed.len(), 2);
        assert_eq!(a.sent.len(), 3);
    }

    #[test]
    fn packing_splits_at_the_message_size() {
        let routes: Vec<Route> = (0..3000u32)
            .map(|i| {
                Route::new(Prefix::V4(
                    Ipv4Prefix::new(Ipv4Addr::from_bits(0x0a00_0000 | (i << 8)), 24).unwrap(),
                ))
            })
            .collect();
        let a = build_announcements(&routes, &session(false, "127.0.0.5"));
        assert!(a.messages.len() >= 3);
        assert!(a.messages.iter().all(|m| m.len() <= 4096));
        let (ann, _, _) = decode(&a.messages);
        assert_eq!(ann.len(), 3000);
        let w = build_withdrawals(&a.sent, &UpdateConfig::new());
        assert!(w.len() >= 3 && w.iter().all(|m| m.len() <= 4096));
        let (_, wd, eor) = decode(&w);
        assert_eq!((wd.len(), eor), (3000, 0));
        let v6 = build_withdrawals(&[p("2001:db8::/32")], &UpdateConfig::new());
        assert_eq!(decode(&v6).1, ["2001:db8::/32"]);
        let e = decode(&[
            end_of_rib(AfiSafi::IPV4_UNICAST),
            end_of_rib(AfiSafi::IPV6_UNICAST),
        ]);
        assert_eq!(e.2, 2);
    }

    #[test]
    fn if_inet6() {
        let text = "\
00000000000000000000000000000001 01 80 10 80       lo
fe8000000000000000fc00fffe000001 04 40 20 80     eth0
20010db8000000000000000000000007 04 40 00 40     eth0
fd000000000000000000000000000002 04 40 00 80     eth0
";
        // The tentative one is skipped, the link-local and loopback too.
        assert_eq!(global_ipv6_in(text), Some("fd00::2".parse().unwrap()));
        assert_eq!(global_ipv6_in("garbage\n"), None);
    }

    #[test]
    fn health_rise_and_fall() {
        let mut h = Health::new(2, 3);
        assert_eq!(
            h.record(true),
            Some(Transition {
                up: true,
                checks: 1
            })
        );
        assert_eq!(h.record(false), None);
        assert_eq!(h.record(true), None); // the failure streak starts over
        assert_eq!(h.record(false), None);
        assert_eq!(h.record(false), None);
        assert_eq!(
            h.record(false),
            Some(Transition {
                up: false,
                checks: 3
            })
        );
        assert_eq!(h.record(true), None);
        assert_eq!(
            h.record(true),
            Some(Transition {
                up: true,
                checks: 2
            })
        );
        let mut h = Health::new(1, 1);
        assert_eq!(
            h.record(false),
            Some(Transition {
                up: false,
                checks: 1
            })
        );
        assert_eq!(
            h.record(true),
            Some(Transition {
                up: true,
                checks: 1
            })
        );
    }
}
