//! Tool-name patterns: `*` matches any run of characters, everything else itself.

/// Whether `name` matches any of `patterns` (every name matches an empty list).
pub fn matches_any(patterns: &[String], name: &str) -> bool {
    patterns.is_empty() || patterns.iter().any(|p| matches(p, name))
}

/// Whether `name` matches `pattern`. Greedy with one backtrack point (the last `*`), so
/// time is O(len(pattern) × len(name)) at worst and there is no recursion to blow up on a
/// pattern like `*a*a*a*a*b`.
pub fn matches(pattern: &str, name: &str) -> bool {
    let (p, n) = (pattern.as_bytes(), name.as_bytes());
    let (mut pi, mut ni) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ni < n.len() {
        if pi < p.len() && p[pi] == b'*' {
            star = Some((pi, ni));
            pi += 1;
        } else if pi < p.len() && p[pi] == n[ni] {
            pi += 1;
            ni += 1;
        } else if let Some((sp, sn)) = star {
            // Let the last star swallow one more character and retry from there.
            pi = sp + 1;
            ni = sn + 1;
            star = Some((sp, sn + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == b'*')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stars_match_runs_and_literals_match_themselves() {
        assert!(matches("fs.*", "fs.read"));
        assert!(matches("*", ""));
        assert!(matches("*.read", "fs.read"));
        assert!(matches("f*d", "fs.read"));
        assert!(matches("fs.read", "fs.read"));
        assert!(matches("**", "x"));
        assert!(!matches("fs.*", "http.fetch"));
        assert!(!matches("fs.read", "fs.reads"));
        assert!(!matches("fs", "fs.read"));
        assert!(!matches("*a*a*a*a*b", &"a".repeat(200)));
        assert!(matches_any(&[], "anything"));
        assert!(matches_any(&["x".into(), "time.*".into()], "time.now"));
    }
}
