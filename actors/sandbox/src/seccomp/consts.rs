//! Named constants a policy file may use in argument comparisons and errno actions.
//!
//! Values come from the `libc` crate for the target the node is built for, so ioctl
//! numbers and socket types are right on every architecture (they differ on some).
//! The few that `libc` does not export are spelled out with their kernel header.

/// A constant name usable in an argument value, e.g. `"AF_INET"` or `"CLONE_NEWUSER"`.
pub(crate) fn constant(name: &str) -> Option<u32> {
    match name {
        // Socket families and types (socket(2), socketpair(2)).
        "AF_UNIX" | "AF_LOCAL" => fit(libc::AF_UNIX),
        "AF_INET" => fit(libc::AF_INET),
        "AF_INET6" => fit(libc::AF_INET6),
        "AF_NETLINK" => fit(libc::AF_NETLINK),
        "AF_PACKET" => fit(libc::AF_PACKET),
        "AF_VSOCK" => fit(libc::AF_VSOCK),
        "SOCK_STREAM" => fit(libc::SOCK_STREAM),
        "SOCK_DGRAM" => fit(libc::SOCK_DGRAM),
        "SOCK_SEQPACKET" => fit(libc::SOCK_SEQPACKET),
        "SOCK_RAW" => fit(libc::SOCK_RAW),
        "SOCK_NONBLOCK" => fit(libc::SOCK_NONBLOCK),
        "SOCK_CLOEXEC" => fit(libc::SOCK_CLOEXEC),
        // include/linux/net.h: the type lives in the low 4 bits, flags above.
        "SOCK_TYPE_MASK" => Some(0xf),
        "NETLINK_ROUTE" => fit(libc::NETLINK_ROUTE),
        // Namespace flags of clone(2) and unshare(2).
        "CLONE_NEWNS" => fit(libc::CLONE_NEWNS),
        "CLONE_NEWUTS" => fit(libc::CLONE_NEWUTS),
        "CLONE_NEWIPC" => fit(libc::CLONE_NEWIPC),
        "CLONE_NEWUSER" => fit(libc::CLONE_NEWUSER),
        "CLONE_NEWPID" => fit(libc::CLONE_NEWPID),
        "CLONE_NEWNET" => fit(libc::CLONE_NEWNET),
        "CLONE_NEWCGROUP" => fit(libc::CLONE_NEWCGROUP),
        "CLONE_NEWTIME" => fit(libc::CLONE_NEWTIME),
        // Terminal ioctls.
        "TIOCSTI" => fit(libc::TIOCSTI),
        "TIOCLINUX" => fit(libc::TIOCLINUX),
        "FIONREAD" => fit(libc::FIONREAD),
        // include/uapi/linux/personality.h.
        "PER_LINUX" => Some(0x0000),
        "PER_LINUX32" => Some(0x0008),
        "UNAME26" => fit(libc::UNAME26),
        "ADDR_NO_RANDOMIZE" => fit(libc::ADDR_NO_RANDOMIZE),
        "READ_IMPLIES_EXEC" => fit(libc::READ_IMPLIES_EXEC),
        "PER_QUERY" => Some(0xffff_ffff),
        _ => None,
    }
}

/// Every constant above fits in 32 bits; the checked conversion only guards the table
/// against a `libc` type change turning into a silently wrong value.
fn fit<T: TryInto<u32>>(value: T) -> Option<u32> {
    value.try_into().ok()
}

/// An errno name usable in `errno:NAME` actions.
pub(crate) fn errno(name: &str) -> Option<i32> {
    Some(match name {
        "EPERM" => libc::EPERM,
        "ENOENT" => libc::ENOENT,
        "EACCES" => libc::EACCES,
        "EINVAL" => libc::EINVAL,
        "ENOSYS" => libc::ENOSYS,
        "ENOTTY" => libc::ENOTTY,
        "EOPNOTSUPP" | "ENOTSUP" => libc::EOPNOTSUPP,
        "EAFNOSUPPORT" => libc::EAFNOSUPPORT,
        "EPROTONOSUPPORT" => libc::EPROTONOSUPPORT,
        "ENOTSOCK" => libc::ENOTSOCK,
        _ => return None,
    })
}
