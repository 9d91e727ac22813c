//! An error with every cause it carries, for messages people read.

use std::error::Error;

/// `err` followed by its causes, `": "`-separated. Many errors (reqwest's, hyper's) say
/// only the outermost layer in `Display` and keep the useful part (a refused connection,
/// a refused redirect) in their sources.
///
/// ```
/// #[derive(Debug)]
/// struct Request(std::io::Error);
/// impl std::fmt::Display for Request {
///     fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
///         f.write_str("request failed")
///     }
/// }
/// impl std::error::Error for Request {
///     fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
///         Some(&self.0)
///     }
/// }
/// let err = Request(std::io::Error::other("connection refused"));
/// assert_eq!(neuroflow_kit::error_chain(&err), "request failed: connection refused");
/// ```
pub fn error_chain(err: &dyn Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
