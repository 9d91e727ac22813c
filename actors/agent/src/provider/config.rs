//! Choosing and building a provider from configuration.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::LlmProvider;
use super::anthropic::{AnthropicConfig, AnthropicProvider};
use super::error::ProviderError;
use super::openai::{OpenAiConfig, OpenAiProvider};
use super::pricing::Pricing;
use super::rules::Rules;
use super::scripted::ScriptedProvider;

/// Which provider, and its settings. In TOML: `kind = "openai"` (or `"anthropic"`,
/// `"scripted"`) beside the kind's own fields.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ProviderConfig {
    #[serde(alias = "openai_compatible")]
    Openai(OpenAiConfig),
    Anthropic(AnthropicConfig),
    Scripted(ScriptedConfig),
}

/// The scripted provider's settings.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ScriptedConfig {
    /// A rules file; the built-in default rules when `None`.
    pub rules: Option<PathBuf>,
}

/// Builds the configured provider; with nothing configured, the scripted provider with
/// its default rules, and a log line saying so.
pub fn build_provider(
    config: Option<&ProviderConfig>,
    pricing: Arc<Pricing>,
) -> Result<Arc<dyn LlmProvider>, ProviderError> {
    Ok(match config {
        None => {
            tracing::info!(
                "no LLM provider configured: using the built-in scripted provider (offline, default rules)"
            );
            Arc::new(ScriptedProvider::default_rules(pricing))
        }
        Some(ProviderConfig::Openai(c)) => Arc::new(OpenAiProvider::new(c.clone(), pricing)?),
        Some(ProviderConfig::Anthropic(c)) => Arc::new(AnthropicProvider::new(c.clone(), pricing)?),
        Some(ProviderConfig::Scripted(ScriptedConfig { rules: None })) => {
            Arc::new(ScriptedProvider::default_rules(pricing))
        }
        Some(ProviderConfig::Scripted(ScriptedConfig { rules: Some(path) })) => {
            Arc::new(ScriptedProvider::new(Rules::load(path)?, pricing))
        }
    })
}

/// A secret that never shows in logs, `Debug` output or serialized config.
#[derive(Clone, PartialEq)]
pub struct ApiKey(String);

impl ApiKey {
    pub fn new(key: impl Into<String>) -> Self {
        Self(key.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The header carrying the key, marked sensitive so HTTP logging leaves it out.
    pub(crate) fn header_value(&self, prefix: &str) -> Result<HeaderValue, ProviderError> {
        let mut v = HeaderValue::try_from(format!("{prefix}{}", self.0))
            .map_err(|_| ProviderError::Config("the API key is not a valid header value".into()))?;
        v.set_sensitive(true);
        Ok(v)
    }
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiKey(<redacted>)")
    }
}

impl Serialize for ApiKey {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str("<redacted>")
    }
}

impl<'de> Deserialize<'de> for ApiKey {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(ApiKey)
    }
}

/// Adds configured extra headers, refusing a name or value HTTP does not allow.
pub(crate) fn add_headers(
    headers: &mut HeaderMap,
    extra: &BTreeMap<String, String>,
) -> Result<(), ProviderError> {
    for (name, value) in extra {
        let bad = |what: &str| ProviderError::Config(format!("extra header {name:?}: {what}"));
        let n = HeaderName::try_from(name.as_str()).map_err(|_| bad("invalid name"))?;
        let v = HeaderValue::try_from(value.as_str()).map_err(|_| bad("invalid value"))?;
        headers.insert(n, v);
    }
    Ok(())
}

/// A base URL without its trailing slash, refused unless it is http(s).
pub(crate) fn parse_base_url(url: &str) -> Result<String, ProviderError> {
    let parsed = reqwest::Url::parse(url)
        .map_err(|e| ProviderError::Config(format!("base URL {url:?}: {e}")))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(ProviderError::Config(format!(
            "base URL {url:?}: scheme must be http or https"
        )));
    }
    Ok(url.trim_end_matches('/').to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_parses_by_kind_and_hides_the_key() {
        let c: ProviderConfig = toml::from_str(
            r#"
            kind = "openai"
            base_url = "http://127.0.0.1:11434/v1"
            api_key = "sk-secret"
            extra_headers = { "X-Team" = "a" }
            http = { total_timeout_ms = 5000, retry = { max_attempts = 2 } }
            "#,
        )
        .unwrap();
        let ProviderConfig::Openai(o) = &c else {
            panic!("{c:?}")
        };
        assert_eq!(o.http.total_timeout_ms, 5000);
        assert_eq!(o.http.retry.max_attempts, 2);
        assert_eq!(o.api_key.as_ref().unwrap().expose(), "sk-secret");
        assert!(!format!("{c:?}").contains("sk-secret"));
        assert!(!serde_json::to_string(&c).unwrap().contains("sk-secret"));

        let bad = toml::from_str::<ProviderConfig>("kind = \"anthropic\"\nbase_ur = \"x\"");
        assert!(bad.unwrap_err().to_string().contains("base_ur"));
        let unknown = toml::from_str::<ProviderConfig>("kind = \"gemini\"");
        assert!(unknown.is_err());
    }

    #[test]
    fn nothing_configured_means_scripted() {
        let p = build_provider(None, Arc::default()).unwrap();
        assert_eq!(p.name(), "scripted");
        assert!(p.description().contains("default"), "{}", p.description());
    }

    #[test]
    fn bad_base_urls_are_config_errors() {
        for url in ["not a url", "ftp://host/v1"] {
            let c = OpenAiConfig {
                base_url: url.into(),
                ..Default::default()
            };
            let err = OpenAiProvider::new(c, Arc::default()).err().unwrap();
            assert!(matches!(err, ProviderError::Config(_)), "{err}");
        }
        assert_eq!(parse_base_url("http://h:1/v1/").unwrap(), "http://h:1/v1");
        let mut c = OpenAiConfig::default();
        c.extra_headers.insert("X-Bad".into(), "line\nbreak".into());
        let err = OpenAiProvider::new(c, Arc::default()).err().unwrap();
        assert!(err.to_string().contains("X-Bad"), "{err}");
    }
}
