//! A compiled seccomp program and its loader.
//!
//! The loader is hand-written on purpose. A profile is compiled once, in the node, with
//! libseccomp; the program then travels to each sandbox init in a MessagePack frame and is
//! loaded there with one `seccomp(2)` call. The init so needs no libseccomp at run time,
//! does no compiling on the hot path of every sandbox start, and loads exactly the bytes
//! the node compiled and can log.

use std::fmt;
use std::io;

use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde::{Deserialize, Serialize, Serializer};
use thiserror::Error;

/// A classic BPF program for `SECCOMP_SET_MODE_FILTER`: an array of `struct sock_filter`
/// (8 bytes each, native byte order), as exported by libseccomp.
#[derive(Clone, PartialEq, Eq)]
pub struct Bpf {
    program: Vec<u8>,
}

#[derive(Debug, Error)]
#[non_exhaustive]
pub enum SeccompError {
    #[error("seccomp program of {bytes} bytes is not a whole number of 8-byte instructions")]
    Truncated { bytes: usize },

    #[error("seccomp program has {instructions} instructions; the kernel accepts 1 to {max}")]
    BadLength { instructions: usize, max: usize },

    /// The kernel only takes a filter from a process that cannot gain privileges by exec
    /// (or that holds CAP_SYS_ADMIN, which a sandbox never does).
    #[error(
        "no_new_privs is not set; set it with prctl(PR_SET_NO_NEW_PRIVS) before installing the seccomp filter"
    )]
    NoNewPrivs,

    #[error("could not read the no_new_privs flag: {0}")]
    NoNewPrivsQuery(#[source] io::Error),

    #[error("the kernel refused the seccomp filter: {0}")]
    Load(#[source] io::Error),

    /// With SECCOMP_FILTER_FLAG_TSYNC the kernel names a thread it could not bring along.
    #[error("thread {tid} could not be synchronised to the new seccomp filter")]
    ThreadSync { tid: i64 },
}

impl Bpf {
    /// Size of one `struct sock_filter`.
    pub const INSTRUCTION_SIZE: usize = std::mem::size_of::<libc::sock_filter>();
    /// BPF_MAXINSNS: the longest classic BPF program the kernel accepts.
    pub const MAX_INSTRUCTIONS: usize = libc::BPF_MAXINSNS as usize;

    /// Wrap raw program bytes, checking only their shape; the kernel verifies the program
    /// itself when it is installed.
    pub fn from_bytes(program: Vec<u8>) -> Result<Bpf, SeccompError> {
        if !program.len().is_multiple_of(Self::INSTRUCTION_SIZE) {
            return Err(SeccompError::Truncated {
                bytes: program.len(),
            });
        }
        let instructions = program.len() / Self::INSTRUCTION_SIZE;
        if instructions == 0 || instructions > Self::MAX_INSTRUCTIONS {
            return Err(SeccompError::BadLength {
                instructions,
                max: Self::MAX_INSTRUCTIONS,
            });
        }
        Ok(Bpf { program })
    }

    /// The raw program bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.program
    }

    /// Number of BPF instructions.
    pub fn len(&self) -> usize {
        self.program.len() / Self::INSTRUCTION_SIZE
    }

    /// Always false for a program built by [`Bpf::from_bytes`]; present for symmetry.
    pub fn is_empty(&self) -> bool {
        self.program.is_empty()
    }

    /// Load the program into the calling process: every thread, through
    /// SECCOMP_FILTER_FLAG_TSYNC, and every process it execs or forks afterwards.
    ///
    /// no_new_privs must already be set; this does not set it, because when to give up
    /// setuid transitions is the init's decision, taken once for the whole start sequence.
    /// Filters stack: installing twice applies both, the stricter result winning.
    ///
    /// Makes two system calls and allocates nothing, so it is safe right before `execve`,
    /// including in a child between `fork` and `exec`.
    pub fn install(&self) -> Result<(), SeccompError> {
        // SAFETY: PR_GET_NO_NEW_PRIVS reads a flag of the calling thread; no pointers.
        let nnp = unsafe { libc::prctl(libc::PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) };
        match nnp {
            1 => {}
            0 => return Err(SeccompError::NoNewPrivs),
            _ => return Err(SeccompError::NoNewPrivsQuery(io::Error::last_os_error())),
        }
        let prog = libc::sock_fprog {
            // `from_bytes` bounds the length to MAX_INSTRUCTIONS (4096), which fits.
            len: self.len() as libc::c_ushort,
            // The kernel copies the program out of our memory byte by byte
            // (copy_from_user), so the byte buffer needs no sock_filter alignment.
            filter: self.program.as_ptr().cast_mut().cast::<libc::sock_filter>(),
        };
        // SAFETY: `prog` points at `len` instructions that live as long as `self`, which
        // outlives the call; the kernel only reads them. seccomp(2) has no libc wrapper in
        // every glibc, hence the raw syscall.
        let rc = unsafe {
            libc::syscall(
                libc::SYS_seccomp,
                libc::SECCOMP_SET_MODE_FILTER,
                libc::SECCOMP_FILTER_FLAG_TSYNC,
                &prog as *const libc::sock_fprog,
            )
        };
        match rc {
            0 => Ok(()),
            tid if tid > 0 => Err(SeccompError::ThreadSync { tid }),
            _ => Err(SeccompError::Load(io::Error::last_os_error())),
        }
    }
}

impl fmt::Debug for Bpf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Bpf")
            .field("instructions", &self.len())
            .finish()
    }
}

/// Serialized as one byte string (MessagePack `bin`), not as a list of numbers.
impl Serialize for Bpf {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_bytes(&self.program)
    }
}

/// Checked like [`Bpf::from_bytes`]: a frame cannot smuggle in a malformed length.
impl<'de> Deserialize<'de> for Bpf {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_bytes(BpfVisitor)
    }
}

struct BpfVisitor;

impl<'de> Visitor<'de> for BpfVisitor {
    type Value = Bpf;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a seccomp BPF program as a byte string")
    }

    fn visit_bytes<E: de::Error>(self, bytes: &[u8]) -> Result<Bpf, E> {
        self.visit_byte_buf(bytes.to_vec())
    }

    fn visit_byte_buf<E: de::Error>(self, bytes: Vec<u8>) -> Result<Bpf, E> {
        Bpf::from_bytes(bytes).map_err(E::custom)
    }

    /// Formats without a byte-string type (JSON) carry the program as a list of numbers.
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Bpf, A::Error> {
        let limit = Bpf::MAX_INSTRUCTIONS * Bpf::INSTRUCTION_SIZE;
        let mut bytes = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(limit));
        while let Some(byte) = seq.next_element::<u8>()? {
            if bytes.len() == limit {
                return Err(de::Error::custom(SeccompError::BadLength {
                    instructions: limit / Bpf::INSTRUCTION_SIZE + 1,
                    max: Bpf::MAX_INSTRUCTIONS,
                }));
            }
            bytes.push(byte);
        }
        Bpf::from_bytes(bytes).map_err(de::Error::custom)
    }
}
