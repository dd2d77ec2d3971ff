//! The listening sockets: one per core that serves HTTP, all on the same address, with each
//! new connection steered to the listener of the core that processed its SYN.
//!
//! One listener is a plain socket with SO_REUSEADDR. Several form a SO_REUSEPORT group bound
//! in core order (the index of a socket in the group is the order it started listening), and
//! a classic BPF program attached to the group returns the current CPU
//! (`ld [SKF_AD_OFF + SKF_AD_CPU]; ret a`): the kernel gives the connection to the listener at
//! that index. Over loopback the SYN is processed on the client's core, from a NIC on its
//! receive queue's core; either way the connection is served where its packets already are,
//! with no wake-up of another core. An index past the group's size falls back to the
//! kernel's hash, which is still correct, only not steered.
//!
//! SO_REUSEPORT would also let a second process on the same port join the group and silently
//! take connections: before forming a group on a fixed port, a probe socket without it binds
//! the address, which fails while anything listens there, as a single listener's bind does.
//!
//! This module only creates sockets; it never accepts and never decides which cores listen.

use std::io;
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use socket2::{Domain, Protocol, Socket, Type};

/// Clients beyond the connection cap wait in the backlog; Go's default is the kernel's
/// somaxconn.
const BACKLOG: i32 = 1024;

/// Not in the libc crate for Linux (asm-generic/socket.h).
const SO_ATTACH_REUSEPORT_CBPF: libc::c_int = 51;

/// `count` listening sockets on `addr`, the one for core `k` at index `k`; with port 0 they
/// all share the port the first was given. `count` 1: a single socket, no group.
pub fn bind_listeners(addr: SocketAddr, count: usize) -> io::Result<Vec<Socket>> {
    if count <= 1 {
        let socket = new_socket(addr)?;
        socket.bind(&addr.into())?;
        socket.listen(BACKLOG)?;
        return Ok(vec![socket]);
    }
    if addr.port() != 0 {
        // Fails while any socket listens on the address, with SO_REUSEPORT or not.
        let probe = new_socket(addr)?;
        probe.bind(&addr.into())?;
    }
    let mut sockets: Vec<Socket> = Vec::with_capacity(count);
    let mut bound = addr;
    for _ in 0..count {
        let socket = new_socket(addr)?;
        socket.set_reuse_port(true)?;
        socket.bind(&bound.into())?;
        // The group's order is the order of `listen`: core order.
        socket.listen(BACKLOG)?;
        if let Some(a) = socket.local_addr()?.as_socket() {
            bound = a;
        }
        sockets.push(socket);
    }
    attach_cpu_steering(&sockets[0])?;
    Ok(sockets)
}

/// `bind_listeners`, trying again while the address is in use, for at most `patience`: a
/// predecessor killed a moment ago (a crash, then a restart by systemd or a benchmark) can
/// hold its listening sockets for some milliseconds after it was reaped, and a restart
/// would fail on its own port. A server that really listens there is still refused, only
/// `patience` later.
pub fn bind_listeners_patiently(
    addr: SocketAddr,
    count: usize,
    patience: Duration,
) -> io::Result<Vec<Socket>> {
    let started = Instant::now();
    loop {
        match bind_listeners(addr, count) {
            Err(e) if e.kind() == io::ErrorKind::AddrInUse && started.elapsed() < patience => {
                std::thread::sleep(Duration::from_millis(10));
            }
            other => return other,
        }
    }
}

fn new_socket(addr: SocketAddr) -> io::Result<Socket> {
    let domain = if addr.is_ipv6() {
        Domain::IPV6
    } else {
        Domain::IPV4
    };
    let socket = Socket::new(domain, Type::STREAM, Some(Protocol::TCP))?;
    // Restarts while old connections sit in TIME_WAIT.
    socket.set_reuse_address(true)?;
    Ok(socket)
}

/// Attaches the program that picks the listener at index = current CPU to the SO_REUSEPORT
/// group of `socket` (it applies to the whole group).
pub fn attach_cpu_steering(socket: &Socket) -> io::Result<()> {
    let mut program = [
        libc::sock_filter {
            code: (libc::BPF_LD | libc::BPF_W | libc::BPF_ABS) as u16,
            jt: 0,
            jf: 0,
            k: (libc::SKF_AD_OFF + libc::SKF_AD_CPU) as u32,
        },
        libc::sock_filter {
            code: (libc::BPF_RET | libc::BPF_A) as u16,
            jt: 0,
            jf: 0,
            k: 0,
        },
    ];
    let fprog = libc::sock_fprog {
        len: program.len() as libc::c_ushort,
        filter: program.as_mut_ptr(),
    };
    // SAFETY: `fprog` points to `program`, both alive for the call; the kernel copies them.
    let rc = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::SOL_SOCKET,
            SO_ATTACH_REUSEPORT_CBPF,
            (&fprog as *const libc::sock_fprog).cast(),
            std::mem::size_of::<libc::sock_fprog>() as libc::socklen_t,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Pins the calling thread to `cpu`.
#[cfg(test)]
pub(crate) fn pin_current_thread(cpu: usize) -> io::Result<()> {
    // SAFETY: a zeroed cpu_set_t is an empty set; CPU_SET writes inside it.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        if libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{TcpListener, TcpStream};
    use std::time::{Duration, Instant};

    fn loopback() -> SocketAddr {
        "127.0.0.1:0".parse().unwrap()
    }

    #[test]
    fn one_listener_refuses_a_second_server_on_its_port() {
        let first = bind_listeners(loopback(), 1).unwrap();
        let addr = first[0].local_addr().unwrap().as_socket().unwrap();
        assert!(bind_listeners(addr, 1).is_err());
        assert!(bind_listeners(addr, 2).is_err());
    }

    #[test]
    fn a_restart_waits_for_its_predecessors_sockets_to_go() {
        let first = bind_listeners(loopback(), 2).unwrap();
        let addr = first[0].local_addr().unwrap().as_socket().unwrap();
        assert!(bind_listeners_patiently(addr, 2, Duration::ZERO).is_err());
        let release = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(200));
            drop(first);
        });
        let second = bind_listeners_patiently(addr, 2, Duration::from_secs(20)).unwrap();
        release.join().unwrap();
        assert_eq!(second[0].local_addr().unwrap().as_socket(), Some(addr));
    }

    #[test]
    fn a_group_shares_one_port_and_refuses_a_second_server() {
        let group = bind_listeners(loopback(), 2).unwrap();
        let a = group[0].local_addr().unwrap().as_socket().unwrap();
        let b = group[1].local_addr().unwrap().as_socket().unwrap();
        assert_eq!(a, b);
        assert_ne!(a.port(), 0);
        // The probe sees the group listening.
        assert!(bind_listeners(a, 2).is_err());
        assert!(bind_listeners(a, 1).is_err());
        // The steering program is accepted again on any member.
        attach_cpu_steering(&group[1]).unwrap();
    }

    /// Which listener of `group` got the connection made from a thread pinned to `cpu`.
    fn listener_for_client_on(group: &[TcpListener], addr: SocketAddr, cpu: usize) -> usize {
        let client = std::thread::spawn(move || {
            pin_current_thread(cpu).unwrap();
            TcpStream::connect(addr).unwrap()
        })
        .join()
        .unwrap();
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            for (i, l) in group.iter().enumerate() {
                if l.accept().is_ok() {
                    drop(client);
                    return i;
                }
            }
            assert!(Instant::now() < deadline, "no listener got the connection");
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    #[test]
    fn connections_go_to_the_listener_of_the_clients_cpu() {
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
        if cpus < 2 {
            return;
        }
        let group: Vec<TcpListener> = bind_listeners(loopback(), 2)
            .unwrap()
            .into_iter()
            .map(TcpListener::from)
            .collect();
        for l in &group {
            l.set_nonblocking(true).unwrap();
        }
        let addr = group[0].local_addr().unwrap();
        // Without steering each lands on a hashed listener: eight in a row on the expected
        // one would happen once in 256 runs.
        for round in 0..8 {
            let cpu = round % 2;
            assert_eq!(
                listener_for_client_on(&group, addr, cpu),
                cpu,
                "round {round}"
            );
        }
    }
}
