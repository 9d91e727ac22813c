//! The egress bridge: the sandbox's only way out, when its profile allows any.
//!
//! The sandbox's network namespace has nothing but `lo`. This process listens on the
//! proxy port of that loopback and carries each connection, byte for byte, to the node's
//! egress proxy through a Unix socket bound into the sandbox. The proxy decides what may
//! pass, outside the sandbox, where nothing inside can change its rules; the bridge itself
//! is unprivileged and trusts nothing.

use std::io;
use std::net::{Shutdown, TcpListener, TcpStream};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;

use nix::unistd::{ForkResult, Pid, fork};

use super::spec::{EVENT_FD, Egress, SPEC_FD};
use super::{LayerContext, SetupError, command};

/// Inside the sandbox: where the proxy's socket is bound.
pub const SOCKET: &str = "/run/neuroflow/egress.sock";
/// Connections carried at once; more are closed at once (the proxy counts its own too).
const MAX_CONNECTIONS: usize = 64;

/// Forks the bridge, listening before it returns so that the command can connect at once.
pub(super) fn start(egress: &Egress, uid: u32, gid: u32) -> Result<Pid, SetupError> {
    let v4 =
        TcpListener::bind(("127.0.0.1", egress.port)).layer("egress", "listen on 127.0.0.1")?;
    // IPv6 may be disabled in the namespace: then only the IPv4 side serves.
    let v6 = TcpListener::bind(("::1", egress.port)).ok();
    // SAFETY: PID 1 is single-threaded; the child starts its threads after the fork.
    match unsafe { fork() }.layer("egress", "fork the bridge")? {
        ForkResult::Parent { child } => Ok(child),
        ForkResult::Child => {
            super::let_go_of(&[SPEC_FD, EVENT_FD]);
            // The bridge needs no privilege: give up every capability and run as the
            // command's user.
            // Ids first, while CAP_SETUID is still held; then whatever capabilities are left.
            let (gid, uid) = (
                nix::unistd::Gid::from_raw(gid),
                nix::unistd::Uid::from_raw(uid),
            );
            let confined = nix::unistd::setresgid(gid, gid, gid)
                .and_then(|()| nix::unistd::setresuid(uid, uid, uid))
                .map_err(|e| e.to_string())
                .and_then(|()| command::drop_capabilities(&[]).map_err(|e| e.to_string()))
                .and_then(|()| nix::sys::prctl::set_no_new_privs().map_err(|e| e.to_string()));
            if confined.is_err() {
                std::process::exit(1);
            }
            let active = Arc::new(AtomicUsize::new(0));
            if let Some(v6) = v6 {
                let active = active.clone();
                thread::spawn(move || serve(&v6, &active));
            }
            serve(&v4, &active);
            std::process::exit(0)
        }
    }
}

fn serve(listener: &TcpListener, active: &Arc<AtomicUsize>) {
    for conn in listener.incoming() {
        let Ok(conn) = conn else { continue };
        if active.fetch_add(1, Ordering::AcqRel) >= MAX_CONNECTIONS {
            active.fetch_sub(1, Ordering::AcqRel);
            continue; // dropping closes it
        }
        let active = active.clone();
        let spawned = thread::Builder::new().spawn(move || {
            let _ = carry(conn, Path::new(SOCKET));
            active.fetch_sub(1, Ordering::AcqRel);
        });
        if spawned.is_err() {
            // Out of threads (the pids limit counts them): this connection is dropped.
            continue;
        }
    }
}

/// Copies both ways until both sides are done.
fn carry(client: TcpStream, socket: &Path) -> io::Result<()> {
    let upstream = UnixStream::connect(socket)?;
    let (mut client_rx, mut upstream_tx) = (client.try_clone()?, upstream.try_clone()?);
    let forward = thread::Builder::new().spawn(move || {
        let _ = io::copy(&mut client_rx, &mut upstream_tx);
        let _ = upstream_tx.shutdown(Shutdown::Write);
    })?;
    let (mut upstream_rx, mut client_tx) = (upstream, client);
    let _ = io::copy(&mut upstream_rx, &mut client_tx);
    let _ = client_tx.shutdown(Shutdown::Write);
    let _ = forward.join();
    Ok(())
}
