//! Turning a resolved profile into a BPF program with libseccomp.
//!
//! libseccomp does the hard part (architecture check, syscall number layout, argument
//! comparisons on 64-bit registers, a balanced search tree); this module only feeds it the
//! profile and exports the result. Nothing is loaded here: the program is carried to the
//! sandbox init, which loads it with [`Bpf::install`](super::Bpf::install).

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};

use libseccomp::{ScmpAction, ScmpArgCompare, ScmpCompareOp, ScmpFilterContext, ScmpSyscall};
use nix::sys::memfd::{MFdFlags, memfd_create};

use super::bpf::Bpf;
use super::error::PolicyError;
use super::policy::{Action, Profile, Resolved};

impl Action {
    fn scmp(self) -> ScmpAction {
        match self {
            Action::Allow => ScmpAction::Allow,
            Action::Errno(n) => ScmpAction::Errno(n),
            Action::KillProcess => ScmpAction::KillProcess,
        }
    }
}

pub(crate) fn compile(
    policy: &Resolved,
    name: &str,
    profile: &Profile,
) -> Result<Bpf, PolicyError> {
    let fail = |message: String| PolicyError::Compile {
        profile: name.to_owned(),
        message,
    };
    let scmp = |e: libseccomp::error::SeccompError| fail(e.to_string());

    // A new context filters the native architecture only; anything else gets the bad-arch
    // action, and libseccomp sends x32 numbers (bit 30 set) there too.
    let mut ctx = ScmpFilterContext::new(policy.default_action.scmp()).map_err(scmp)?;
    ctx.set_act_badarch(policy.bad_arch_action.scmp())
        .map_err(scmp)?;
    // Only exported, never loaded by libseccomp: the init sets no_new_privs itself.
    ctx.set_ctl_nnp(false).map_err(scmp)?;
    // Level 2: a binary search tree over syscall numbers instead of a linear list.
    ctx.set_ctl_optimize(2).map_err(scmp)?;

    for (&nr, entry) in &profile.entries {
        // libseccomp refuses rules that repeat the default action; they change nothing.
        if entry.action == policy.default_action {
            continue;
        }
        let syscall = ScmpSyscall::from_raw_syscall(nr);
        let action = entry.action.scmp();
        let added = match &entry.when {
            None => ctx.add_rule(action, syscall).map(|_| ()),
            Some(alternatives) => alternatives.iter().try_for_each(|alt| {
                let cmps: Vec<ScmpArgCompare> = alt
                    .iter()
                    .map(|c| {
                        ScmpArgCompare::new(
                            c.index,
                            ScmpCompareOp::MaskedEqual(c.masked.mask.into()),
                            c.masked.value.into(),
                        )
                    })
                    .collect();
                ctx.add_rule_conditional(action, syscall, &cmps).map(|_| ())
            }),
        };
        added.map_err(|e| fail(format!("rule for `{}`: {e}", entry.name)))?;
    }

    let bytes = export(&ctx).map_err(|e| fail(format!("export: {e}")))?;
    let instructions = bytes.len() / Bpf::INSTRUCTION_SIZE;
    if instructions > Bpf::MAX_INSTRUCTIONS {
        return Err(PolicyError::ProgramTooLong {
            profile: name.to_owned(),
            instructions,
            max: Bpf::MAX_INSTRUCTIONS,
        });
    }
    Bpf::from_bytes(bytes).map_err(|e| fail(e.to_string()))
}

/// `seccomp_export_bpf_mem` needs libseccomp 2.6; the file-descriptor export works with
/// every 2.5 release, so write to an anonymous memory file and read it back.
fn export(ctx: &ScmpFilterContext) -> Result<Vec<u8>, Box<dyn std::error::Error>> {
    let mut file = File::from(memfd_create(c"neuroflow-seccomp", MFdFlags::MFD_CLOEXEC)?);
    ctx.export_bpf(&file)?;
    file.seek(SeekFrom::Start(0))?;
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes)?;
    Ok(bytes)
}
