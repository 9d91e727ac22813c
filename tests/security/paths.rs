//! Path escapes: reaching host files through `..`, links, /proc, inherited fds or cwd.

use std::os::unix::ffi::OsStrExt;

use crate::{HostDir, assert_exited_ok, attack, report, require_isolation};

/// A host file the sandbox must never read.
fn host_secret() -> (HostDir, String) {
    let dir = HostDir::new("secret");
    let path = dir.path().join("secret.txt");
    std::fs::write(&path, "host-secret-7f3a").unwrap();
    let path = path.to_string_lossy().into_owned();
    (dir, path)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dot_dot_traversal_stays_inside() {
    require_isolation!();
    let (_dir, secret) = host_secret();
    let r = report(&format!(
        r#"
attempt("direct", lambda: open({secret:?}).read())
attempt("dotdot", lambda: open("/workspace/../../../.." + {secret:?}).read())
attempt("work", lambda: os.listdir("/work"))
attempt("root_home", lambda: os.listdir("/root"))
"#
    ))
    .await;
    for label in ["direct", "dotdot", "work", "root_home"] {
        r.refused(label, &["ENOENT"]);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn symlinks_resolve_inside_the_sandbox() {
    require_isolation!();
    let (_dir, secret) = host_secret();
    let r = report(&format!(
        r#"
os.symlink({secret:?}, "/workspace/link")
attempt("abs_link", lambda: open("/workspace/link").read())
os.symlink("../../../../../../../.." + {secret:?}, "/workspace/rel")
attempt("rel_link", lambda: open("/workspace/rel").read())
os.symlink("/proc/1/root" + {secret:?}, "/workspace/proc_link")
attempt("proc_link", lambda: open("/workspace/proc_link").read())
"#
    ))
    .await;
    r.refused("abs_link", &["ENOENT"]);
    r.refused("rel_link", &["ENOENT"]);
    r.refused("proc_link", &["EACCES", "ENOENT"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hardlinks_cannot_reach_outside_files() {
    require_isolation!();
    let (_dir, secret) = host_secret();
    let r = report(&format!(
        r#"
attempt("host_file", lambda: os.link({secret:?}, "/workspace/h1"))
attempt("shadow", lambda: os.link("/etc/shadow", "/workspace/h2"))
attempt("read_shadow", lambda: open("/etc/shadow").read())
"#
    ))
    .await;
    r.refused("host_file", &["ENOENT"]);
    // Across mounts (EXDEV) or refused by protected_hardlinks (EPERM).
    r.refused("shadow", &["EXDEV", "EPERM"]);
    r.refused("read_shadow", &["EACCES"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proc_root_links_do_not_lead_to_the_host() {
    require_isolation!();
    let (_dir, secret) = host_secret();
    let r = report(&format!(
        r#"
attempt("pid1_root", lambda: os.listdir("/proc/1/root/"))
attempt("pid1_cwd", lambda: os.listdir("/proc/1/cwd/"))
attempt("self_root", lambda: open("/proc/self/root" + {secret:?}).read())
print("self_root_is=" + os.readlink("/proc/self/root"))
print("cwd=" + os.getcwd())
"#
    ))
    .await;
    r.refused("pid1_root", &["EACCES"]);
    r.refused("pid1_cwd", &["EACCES"]);
    r.refused("self_root", &["ENOENT"]);
    assert_eq!(r.get("self_root_is"), "/");
    assert_eq!(r.get("cwd"), "/workspace");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proc_self_exe_cannot_be_overwritten() {
    require_isolation!();
    let before = std::fs::read("/usr/bin/python3").unwrap();
    let r = report(
        r#"
attempt("exe_write", lambda: open("/proc/self/exe", "r+b").write(b"\x00"))
attempt("exe_truncate", lambda: os.truncate("/proc/self/exe", 0))
"#,
    )
    .await;
    r.refused("exe_write", &["ETXTBSY", "EACCES", "EROFS"]);
    r.refused("exe_truncate", &["ETXTBSY", "EACCES", "EROFS"]);
    assert!(std::fs::read("/usr/bin/python3").unwrap() == before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_descriptor_of_the_node_leaks_in() {
    require_isolation!();
    let (_dir, secret) = host_secret();
    // A descriptor opened without O_CLOEXEC, as careless code in an embedding process
    // would: the init must close it.
    let path =
        std::ffi::CString::new(std::path::Path::new(&secret).as_os_str().as_bytes()).unwrap();
    // SAFETY: plain open/close of a file this test created.
    let fd = unsafe { libc::open(path.as_ptr(), libc::O_RDONLY) };
    assert!(fd >= 0);
    let outcome = attack(
        r#"
fds = sorted(int(f) for f in os.listdir("/proc/self/fd"))
print("fds=" + ",".join(str(f) for f in fds))
for f in fds:
    try:
        print("target", f, os.readlink(f"/proc/self/fd/{f}"))
    except OSError:
        pass
"#,
    )
    .await;
    // SAFETY: fd was opened above.
    unsafe { libc::close(fd) };
    assert_exited_ok(&outcome);
    let stdout = String::from_utf8_lossy(&outcome.stdout);
    // 0-2 are the pipes, 3 is listdir's own directory handle.
    assert!(stdout.contains("fds=0,1,2,3\n"), "{stdout}");
    assert!(!stdout.contains("secret"), "{stdout}");
}
