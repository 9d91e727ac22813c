//! Values for span attributes that reach OpenTelemetry with the right type.
//!
//! `tracing-opentelemetry` (0.34) maps `i64`, `f64`, `bool` and strings onto typed
//! OpenTelemetry values, but any unsigned integer falls back to its `Debug` text: a token
//! count recorded as a `u64` would reach the trace backend as the string `"12"`, which it
//! can neither sum nor compare, and formatting it costs an allocation on every span.

/// `value` as the signed integer OpenTelemetry attributes hold, saturating at `i64::MAX`.
///
/// ```
/// use neuroflow_kit::span_value::int;
///
/// let span = tracing::info_span!("chat", gen_ai.usage.input_tokens = tracing::field::Empty);
/// let tokens: u64 = 12;
/// span.record("gen_ai.usage.input_tokens", int(tokens));
/// assert_eq!(int(u64::MAX), i64::MAX);
/// ```
pub fn int(value: impl TryInto<i64>) -> i64 {
    value.try_into().unwrap_or(i64::MAX)
}
