//! A simulated internet from network namespaces, for tests with NATs.
//!
//! The test process's own namespace — the outer, loopback-only one that
//! `cargo xtask test` makes — plays the public internet: whatever the test
//! binds to [`Topology::public_ip`] (origin, tracker, STUN, TURN, a
//! seeder) is a public server. Each home sits behind its own NAT router:
//!
//! ```text
//!  public (this process) ──veth── router i (nftables masquerade) ──veth── home i
//!  203.0.113.16b+1 on lo           WAN 203.0.113.16b+2+i              LAN 192.0.2.x / 198.51.100.x
//! ```
//!
//! Each router and home is a namespace held by a child process
//! ([`namespace::Namespace`]); programs run inside a home with
//! [`Home::command`] (`nsenter -t PID -n -- …`). The NAT is Linux's own:
//! `masquerade` keeps one mapping per internal socket (endpoint-independent
//! mapping) and conntrack lets in only replies from where the home sent
//! (port-restricted filtering) — a port-restricted cone NAT;
//! `masquerade random` picks a fresh port per destination — a symmetric
//! NAT. Addresses and names are unique per topology without a lock
//! ([`addresses`]). Everything is undone on drop.
//!
//! Building refuses to run outside the loopback-only namespace
//! (`PEERHOST_NETNS=1`, and not the host's namespace): it changes routes,
//! addresses and nftables rules of the namespace it runs in.

pub mod addresses;
pub mod namespace;

use std::net::Ipv4Addr;
use std::process::Command;

use namespace::run;
pub use namespace::{Namespace, SetupError};

/// The NAT every home router applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NatKind {
    /// Linux's default masquerade: one public port per internal socket,
    /// inbound only from where the home has sent.
    PortRestricted,
    /// `masquerade random`: a different public port per destination, so a
    /// server-reflexive address is useless to anyone but the STUN server.
    Symmetric,
}

/// What to build.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TopologyOptions {
    /// Homes, each behind its own router (1 ..= [`addresses::MAX_HOMES`]).
    pub homes: usize,
    /// The routers' NAT.
    pub nat: NatKind,
    /// Drop UDP between the routers' WAN addresses on the public side, so
    /// homes can only meet through a relay (TURN) on the public address.
    pub drop_udp_between_homes: bool,
}

impl Default for TopologyOptions {
    fn default() -> Self {
        TopologyOptions {
            homes: 2,
            nat: NatKind::PortRestricted,
            drop_udp_between_homes: false,
        }
    }
}

/// One home: a namespace with a LAN address, behind its router.
pub struct Home {
    // Field order is drop order: the home before its router.
    ns: Namespace,
    router: Namespace,
    ip: Ipv4Addr,
    wan_ip: Ipv4Addr,
}

impl Home {
    /// The home's own (LAN) address.
    pub fn ip(&self) -> Ipv4Addr {
        self.ip
    }

    /// The public address its router maps it to.
    pub fn wan_ip(&self) -> Ipv4Addr {
        self.wan_ip
    }

    /// A command that runs `program` inside the home
    /// (`nsenter -t PID -n -- program`).
    pub fn command(&self, program: &str) -> Command {
        self.ns.command(program)
    }

    /// The home's namespace.
    pub fn namespace(&self) -> &Namespace {
        &self.ns
    }

    /// Its router's namespace.
    pub fn router(&self) -> &Namespace {
        &self.router
    }
}

/// The link the public side's default route leads into, and its peer
/// (left down, so whatever is sent there is dropped).
const VOID_LINK: &str = "ph-void";
const VOID_PEER: &str = "ph-void-peer";

/// A built simulated internet; torn down when dropped.
pub struct Topology {
    block: u8,
    /// Homes whose set-up began (their WAN links may exist).
    begun: usize,
    homes: Vec<Home>,
    table: Option<String>,
}

/// Programs the topology needs.
pub const REQUIRED_PROGRAMS: [&str; 5] = ["ip", "nft", "nsenter", "unshare", "timeout"];

/// The first of [`REQUIRED_PROGRAMS`] not on `PATH` (or in `/usr/sbin`, `/sbin`).
pub fn missing_program() -> Option<&'static str> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let mut dirs: Vec<_> = std::env::split_paths(&path).collect();
    dirs.extend(["/usr/sbin".into(), "/sbin".into()]);
    REQUIRED_PROGRAMS
        .into_iter()
        .find(|p| !dirs.iter().any(|d| d.join(p).is_file()))
}

/// Refuses anything but the loopback-only namespace of the test suite.
fn check_we_may_change_this_namespace() -> Result<(), SetupError> {
    if std::env::var("PEERHOST_NETNS").as_deref() != Ok("1") {
        return Err(SetupError::new(
            "check PEERHOST_NETNS",
            "not in the loopback-only namespace of `cargo xtask test`: refusing to change routes",
        ));
    }
    let ours = std::fs::read_link("/proc/self/ns/net");
    let host = std::fs::read_link("/proc/1/ns/net");
    if let (Ok(ours), Ok(host)) = (ours, host)
        && ours == host
    {
        return Err(SetupError::new(
            "compare /proc/self/ns/net with /proc/1/ns/net",
            "this is the host's network namespace: refusing to change routes",
        ));
    }
    if let Some(p) = missing_program() {
        return Err(SetupError::new(
            p,
            format!(
                "`{p}` is not installed (cargo xtask test installs iproute2, nftables, util-linux)"
            ),
        ));
    }
    Ok(())
}

/// Claims a block of the address plan: adds its public address to `lo`.
fn claim_block() -> Result<u8, SetupError> {
    run(Command::new("ip").args(["link", "set", "lo", "up"]))?;
    for block in 0..addresses::BLOCKS {
        let ip = format!("{}/32", addresses::public_ip(block));
        match run(Command::new("ip").args(["addr", "add", &ip, "dev", "lo"])) {
            Ok(_) => return Ok(block),
            Err(e) if e.detail.contains("File exists") || e.detail.contains("already assigned") => {
                continue;
            }
            Err(e) => return Err(e),
        }
    }
    Err(SetupError::new(
        "ip addr add 203.0.113.x/32 dev lo",
        format!("all {} address blocks are taken", addresses::BLOCKS),
    ))
}

impl Topology {
    /// Builds the topology: routers, homes, links, routes and NAT rules.
    /// Errors name the command that failed.
    pub fn build(options: TopologyOptions) -> Result<Topology, SetupError> {
        check_we_may_change_this_namespace()?;
        if options.homes == 0 || options.homes > addresses::MAX_HOMES {
            return Err(SetupError::new(
                "Topology::build",
                format!("homes must be 1..={}", addresses::MAX_HOMES),
            ));
        }
        let block = claim_block()?;
        // From here on, Drop undoes whatever was done.
        let mut topology = Topology {
            block,
            begun: 0,
            homes: Vec::new(),
            table: None,
        };
        run(Command::new("ip").args([
            "route",
            "add",
            "blackhole",
            &format!("{}/32", addresses::black_hole_ip(block)),
        ]))?;
        // The rest of the internet: a packet for an address no home has
        // (a home's private LAN address, say) is lost silently, as it is
        // past a real server's default route, instead of failing the send
        // (ENETUNREACH with no route at all, EINVAL with a `blackhole`
        // one). coturn tears down a TURN allocation whose relay socket had
        // a send fail, and ICE checks from a relay candidate to a peer's
        // host candidate make exactly those sends (docs/real-networks.md).
        // The default route leads into a veth whose peer is down: sends
        // succeed and the packets are dropped. Topologies in this
        // namespace share it; it is left in place on drop.
        let void_exists = || run(Command::new("ip").args(["link", "show", VOID_LINK])).is_ok();
        if !void_exists()
            && let Err(e) = run(Command::new("ip").args([
                "link", "add", VOID_LINK, "type", "veth", "peer", "name", VOID_PEER,
            ]))
            && !void_exists()
        {
            return Err(e);
        }
        run(Command::new("ip").args(["link", "set", VOID_LINK, "arp", "off", "up"]))?;
        run(Command::new("ip").args(["route", "replace", "default", "dev", VOID_LINK]))?;
        std::fs::write("/proc/sys/net/ipv4/ip_forward", "1")
            .map_err(|e| SetupError::new("write /proc/sys/net/ipv4/ip_forward", e.to_string()))?;
        for i in 0..options.homes {
            topology.begun = i + 1;
            let home = topology.build_home(i, options.nat)?;
            topology.homes.push(home);
        }
        if options.drop_udp_between_homes {
            topology.drop_udp_between_homes()?;
        }
        Ok(topology)
    }

    fn build_home(&self, i: usize, nat: NatKind) -> Result<Home, SetupError> {
        let public = addresses::public_ip(self.block).to_string();
        let wan_ip = addresses::wan_ip(self.block, i);
        let wan = wan_ip.to_string();
        let link = addresses::wan_link_name(self.block, i);
        let (gateway, ip, prefix) = addresses::lan(i);
        let router = Namespace::new(&format!("router {i}"))?;
        let ns = Namespace::new(&format!("home {i}"))?;
        let me = std::process::id().to_string();

        // The WAN link: "wan" in the router, `link` out here.
        router.run(&[
            "ip", "link", "add", "wan", "type", "veth", "peer", "name", &link, "netns", &me,
        ])?;
        run(Command::new("ip").args(["link", "set", &link, "up"]))?;
        run(Command::new("ip").args([
            "route",
            "add",
            &format!("{wan}/32"),
            "dev",
            &link,
            "src",
            &public,
        ]))?;
        router.run(&["ip", "addr", "add", &format!("{wan}/32"), "dev", "wan"])?;
        router.run(&["ip", "link", "set", "wan", "up"])?;
        router.run(&[
            "ip", "route", "add", "default", "via", &public, "dev", "wan", "onlink",
        ])?;

        // The LAN: "lan" in the router, "eth0" in the home.
        let home_pid = ns.pid().to_string();
        router.run(&[
            "ip", "link", "add", "lan", "type", "veth", "peer", "name", "eth0", "netns", &home_pid,
        ])?;
        router.run(&[
            "ip",
            "addr",
            "add",
            &format!("{gateway}/{prefix}"),
            "dev",
            "lan",
        ])?;
        router.run(&["ip", "link", "set", "lan", "up"])?;
        ns.run(&[
            "ip",
            "addr",
            "add",
            &format!("{ip}/{prefix}"),
            "dev",
            "eth0",
        ])?;
        ns.run(&["ip", "link", "set", "eth0", "up"])?;
        ns.run(&["ip", "route", "add", "default", "via", &gateway.to_string()])?;

        // The NAT, and a home router's firewall: nothing new comes in from
        // the WAN. Dropping unsolicited packets before conntrack confirms
        // them also matters for hole punching: a packet left to reach the
        // router's own input would leave an entry that holds the mapped
        // port, and the home's later packet to that peer would be mapped
        // to another port (the peers' checks then never meet).
        router.sysctl("/proc/sys/net/ipv4/ip_forward", "1")?;
        let random = match nat {
            NatKind::PortRestricted => "",
            NatKind::Symmetric => " random",
        };
        let ruleset = format!(
            "table ip home_router {{\n\
             \tchain postrouting {{\n\
             \t\ttype nat hook postrouting priority srcnat; policy accept;\n\
             \t\toifname \"wan\" masquerade{random}\n\
             \t}}\n\
             \tchain inbound {{\n\
             \t\ttype filter hook prerouting priority filter; policy accept;\n\
             \t\tiifname \"wan\" ct state new drop\n\
             \t}}\n\
             }}\n"
        );
        nft(Some(&router), &ruleset)?;
        Ok(Home {
            ns,
            router,
            ip,
            wan_ip,
        })
    }

    /// A rule in the public side's forward path dropping (and counting) UDP
    /// between any two routers' WAN addresses.
    fn drop_udp_between_homes(&mut self) -> Result<(), SetupError> {
        let table = format!("peerhost_topology_{}", self.block);
        let wans = self
            .homes
            .iter()
            .map(|h| h.wan_ip.to_string())
            .collect::<Vec<_>>()
            .join(", ");
        let ruleset = format!(
            "table ip {table} {{\n\
             \tchain forward {{\n\
             \t\ttype filter hook forward priority filter; policy accept;\n\
             \t\tip saddr {{ {wans} }} ip daddr {{ {wans} }} meta l4proto udp counter drop\n\
             \t}}\n\
             }}\n"
        );
        self.table = Some(table);
        nft(None, &ruleset)
    }

    /// UDP packets between homes dropped so far by the
    /// `drop_udp_between_homes` rule (0 without it).
    pub fn dropped_udp_between_homes(&self) -> Result<u64, SetupError> {
        let Some(table) = &self.table else {
            return Ok(0);
        };
        let listing = run(Command::new("nft").args(["list", "chain", "ip", table, "forward"]))?;
        let packets = listing
            .split_whitespace()
            .skip_while(|w| *w != "packets")
            .nth(1)
            .and_then(|n| n.parse().ok());
        packets.ok_or_else(|| {
            SetupError::new(
                format!("nft list chain ip {table} forward"),
                format!("no packet counter in: {listing}"),
            )
        })
    }

    /// The public address (on this process's namespace): bind servers here.
    pub fn public_ip(&self) -> Ipv4Addr {
        addresses::public_ip(self.block)
    }

    /// An address where every packet is silently dropped: configure a STUN
    /// or TURN server here for one that never answers.
    pub fn black_hole_ip(&self) -> Ipv4Addr {
        addresses::black_hole_ip(self.block)
    }

    /// Home `i` (panics if there is no such home).
    pub fn home(&self, i: usize) -> &Home {
        &self.homes[i]
    }

    /// Every home.
    pub fn homes(&self) -> &[Home] {
        &self.homes
    }
}

/// Loads an nftables ruleset, in `ns` or in this namespace.
fn nft(ns: Option<&Namespace>, ruleset: &str) -> Result<(), SetupError> {
    use std::io::Write as _;
    let mut cmd = match ns {
        Some(ns) => ns.command("nft"),
        None => Command::new("nft"),
    };
    cmd.args(["-f", "-"]);
    let line = format!("{} <<< {ruleset:?}", namespace::command_line(&cmd));
    let mut child = cmd
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| SetupError::new(&line, format!("cannot start: {e}")))?;
    child
        .stdin
        .take()
        .expect("piped")
        .write_all(ruleset.as_bytes())
        .map_err(|e| SetupError::new(&line, e.to_string()))?;
    let out = child
        .wait_with_output()
        .map_err(|e| SetupError::new(&line, e.to_string()))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(SetupError::new(
            line,
            format!(
                "{}: {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            ),
        ))
    }
}

impl Drop for Topology {
    fn drop(&mut self) {
        // Delete our ends of the WAN links first: a dying namespace frees
        // its links asynchronously, and the block's names must be free
        // once its address is.
        for i in 0..self.begun {
            let _ = run(Command::new("ip").args([
                "link",
                "del",
                &addresses::wan_link_name(self.block, i),
            ]));
        }
        self.homes.clear();
        if let Some(table) = self.table.take() {
            let _ = run(Command::new("nft").args(["delete", "table", "ip", &table]));
        }
        let _ = run(Command::new("ip").args([
            "route",
            "del",
            "blackhole",
            &format!("{}/32", addresses::black_hole_ip(self.block)),
        ]));
        let _ = run(Command::new("ip").args([
            "addr",
            "del",
            &format!("{}/32", addresses::public_ip(self.block)),
            "dev",
            "lo",
        ]));
    }
}
