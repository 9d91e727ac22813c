//! Name validation, limit checks and error classification: everything decided before the
//! kernel is asked.

use super::fixtures::{V1_MOUNTINFO, V1_OWN, V2_MOUNTINFO, V2_OWN};
use crate::cgroup::layout::parse;
use crate::cgroup::{
    CgroupError, CgroupLimits, Controller::Memory, HostCgroups, limits, v2, validate_name,
};

#[test]
fn names_must_be_plain_directory_names() {
    for bad in [
        "",
        "../x",
        "a/b",
        "..",
        ".hidden",
        "a..b",
        "x y",
        "näme",
        &"n".repeat(129),
    ] {
        assert!(
            matches!(validate_name(bad), Err(CgroupError::InvalidName { .. })),
            "{bad:?}"
        );
    }
    for good in ["sbx-1", "agent_7.run2", "A"] {
        validate_name(good).unwrap();
    }
}

#[test]
fn limits_are_checked_against_the_host_before_creation() {
    let v1 = parse(V1_MOUNTINFO, V1_OWN, "").unwrap();
    let bare_v2 = parse(V2_MOUNTINFO, V2_OWN, "").unwrap();
    let check = |host: &HostCgroups, l: CgroupLimits| limits::check_supported(host, &l);
    let mem = CgroupLimits {
        memory_bytes: Some(1 << 20),
        ..Default::default()
    };
    assert!(matches!(
        check(&bare_v2, mem),
        Err(CgroupError::ControllerUnavailable {
            controller: Memory,
            layout: "v2"
        })
    ));
    check(&v1, mem).unwrap();
    let swap_only = CgroupLimits {
        swap_bytes: Some(0),
        ..Default::default()
    };
    assert!(matches!(
        check(&v1, swap_only),
        Err(CgroupError::InvalidLimit { limit: "swap", .. })
    ));
    let tiny_cpu = CgroupLimits {
        cpu_quota_millicores: Some(5),
        ..Default::default()
    };
    assert!(matches!(
        check(&v1, tiny_cpu),
        Err(CgroupError::InvalidLimit { limit: "cpu", .. })
    ));
    let zero_pids = CgroupLimits {
        pids_max: Some(0),
        ..Default::default()
    };
    assert!(matches!(
        check(&v1, zero_pids),
        Err(CgroupError::InvalidLimit { limit: "pids", .. })
    ));
    let huge = CgroupLimits {
        memory_bytes: Some(u64::MAX),
        ..Default::default()
    };
    assert!(matches!(
        check(&v1, huge),
        Err(CgroupError::InvalidLimit {
            limit: "memory",
            ..
        })
    ));
}

#[test]
fn ebusy_on_subtree_control_names_the_no_internal_processes_rule() {
    let ebusy = CgroupError::write(
        "/x/cgroup.subtree_control",
        "+memory",
        std::io::Error::from_raw_os_error(libc::EBUSY),
    );
    assert!(matches!(
        v2::internal_processes(ebusy),
        CgroupError::InternalProcesses { .. }
    ));
    let eacces = CgroupError::write(
        "/x/cgroup.subtree_control",
        "+memory",
        std::io::Error::from_raw_os_error(libc::EACCES),
    );
    assert!(matches!(
        v2::internal_processes(eacces),
        CgroupError::Write { .. }
    ));
}
