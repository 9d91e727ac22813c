//! What tokens cost: a price table from config, and token estimates.

use std::collections::BTreeMap;

use neuroflow_kit::protocol::agent::Usage;
use serde::{Deserialize, Serialize};

use super::LlmRequest;

/// Price of one model, in US dollars per million tokens.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelPrice {
    pub input: f64,
    pub output: f64,
}

/// The node's price table: model name → price. A key ending in `*` prices every model
/// whose name starts with the rest (`"gpt-4o*"` covers `gpt-4o-2024-08-06`); an exact
/// key wins over a pattern, and a longer pattern over a shorter one. A model with no
/// price costs 0.
///
/// In TOML: `[pricing."gpt-4o"] input = 2.5` and `output = 10.0` on the next line.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(
    try_from = "BTreeMap<String, ModelPrice>",
    into = "BTreeMap<String, ModelPrice>"
)]
pub struct Pricing {
    models: BTreeMap<String, ModelPrice>,
}

/// A price that cannot be right.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("price of {model:?}: {what}")]
pub struct PricingError {
    pub model: String,
    pub what: String,
}

impl TryFrom<BTreeMap<String, ModelPrice>> for Pricing {
    type Error = PricingError;

    fn try_from(models: BTreeMap<String, ModelPrice>) -> Result<Self, PricingError> {
        let mut pricing = Pricing::default();
        for (model, price) in models {
            pricing.set(model, price)?;
        }
        Ok(pricing)
    }
}

impl From<Pricing> for BTreeMap<String, ModelPrice> {
    fn from(p: Pricing) -> Self {
        p.models
    }
}

impl Pricing {
    /// Adds or replaces a model's price; a negative or non-finite price is refused.
    pub fn set(&mut self, model: impl Into<String>, price: ModelPrice) -> Result<(), PricingError> {
        let model = model.into();
        for (side, v) in [("input", price.input), ("output", price.output)] {
            if !v.is_finite() || v < 0.0 {
                return Err(PricingError {
                    model,
                    what: format!("{side} price {v} is not a finite non-negative number"),
                });
            }
        }
        self.models.insert(model, price);
        Ok(())
    }

    /// The price that applies to `model`, if any.
    pub fn price(&self, model: &str) -> Option<ModelPrice> {
        if let Some(p) = self.models.get(model) {
            return Some(*p);
        }
        self.models
            .iter()
            .filter_map(|(k, p)| Some((k.strip_suffix('*')?, p)))
            .filter(|(prefix, _)| model.starts_with(prefix))
            .max_by_key(|(prefix, _)| prefix.len())
            .map(|(_, p)| *p)
    }

    /// What `usage` costs on `model`, in US dollars (0 without a price).
    pub fn cost(&self, model: &str, usage: &Usage) -> f64 {
        self.price(model).map_or(0.0, |p| {
            (usage.input_tokens as f64 * p.input + usage.output_tokens as f64 * p.output) / 1e6
        })
    }

    /// `usage` with its `cost_usd` filled in.
    pub fn priced(&self, model: &str, mut usage: Usage) -> Usage {
        usage.cost_usd = self.cost(model, &usage);
        usage
    }
}

/// A token count for text whose real count is unknown: one token per 4 bytes of UTF-8,
/// rounded up — the usual rule of thumb for English under BPE tokenizers. Used by the
/// scripted provider and for servers that report no usage, so budgets still bite.
pub fn estimate_tokens(text: &str) -> u64 {
    (text.len() as u64).div_ceil(4)
}

/// [`estimate_tokens`] over everything a request sends: message texts, tool-call
/// arguments and tool schemas.
pub(crate) fn estimate_request_tokens(req: &LlmRequest) -> u64 {
    let messages: u64 = req
        .messages
        .iter()
        .map(|m| {
            let calls: u64 = m
                .tool_calls
                .iter()
                .map(|c| estimate_tokens(&c.name) + estimate_tokens(&c.arguments.to_string()))
                .sum();
            estimate_tokens(&m.content) + calls
        })
        .sum();
    let tools: u64 = req
        .tools
        .iter()
        .map(|t| {
            estimate_tokens(&t.name)
                + estimate_tokens(&t.description)
                + estimate_tokens(&t.parameters.to_string())
        })
        .sum();
    messages + tools
}

#[cfg(test)]
mod tests {
    use super::*;

    fn usage(i: u64, o: u64) -> Usage {
        Usage {
            input_tokens: i,
            output_tokens: o,
            cost_usd: 0.0,
        }
    }

    #[test]
    fn cost_uses_exact_then_longest_pattern_then_zero() {
        let table: Pricing = toml::from_str(
            r#"
            "gpt-4o" = { input = 2.5, output = 10.0 }
            "gpt-4o*" = { input = 1.0, output = 1.0 }
            "gpt-4o-mini*" = { input = 0.15, output = 0.6 }
            "#,
        )
        .unwrap();
        assert!((table.cost("gpt-4o", &usage(1_000_000, 100_000)) - 3.5).abs() < 1e-9);
        assert!((table.cost("gpt-4o-2024", &usage(1_000_000, 0)) - 1.0).abs() < 1e-9);
        let mini = table.cost("gpt-4o-mini-2024", &usage(2_000_000, 1_000_000));
        assert!((mini - 0.9).abs() < 1e-9, "{mini}");
        assert_eq!(table.cost("llama3", &usage(5, 5)), 0.0);
    }

    #[test]
    fn negative_or_nan_prices_are_refused() {
        let err = toml::from_str::<Pricing>(r#""m" = { input = -1.0, output = 1.0 }"#);
        assert!(err.unwrap_err().to_string().contains("input price -1"));
        let mut p = Pricing::default();
        let nan = ModelPrice {
            input: 0.0,
            output: f64::NAN,
        };
        assert!(p.set("m", nan).is_err());
    }

    #[test]
    fn estimates_round_up() {
        assert_eq!(estimate_tokens(""), 0);
        assert_eq!(estimate_tokens("abcde"), 2);
    }
}
