//! Token usage → money, with a per-model price table the operator can override.
//!
//! Units: prices are micro-dollars (1e-6 USD) per million tokens; costs are micro-dollars,
//! rounded up so that no priced call ever costs 0. Model lookup is exact first, then the
//! longest table key that prefixes the reported model (so `gpt-4o-mini-2024-07-18` uses the
//! `gpt-4o-mini` row).
//!
//! Invariants: unknown models cost 0 and are *flagged* (`CostEstimate::priced == false`, plus a
//! warning from [`cost_micros`]), never guessed; arithmetic cannot overflow (u128, saturating).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::types::Usage;

/// Price of one model, micro-dollars per million tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelPrice {
    /// Per million prompt tokens.
    pub input_per_mtok_micros: u64,
    /// Per million completion tokens.
    pub output_per_mtok_micros: u64,
}

impl ModelPrice {
    /// A price given in dollars per million tokens (e.g. `0.15`, `0.60`).
    pub fn usd_per_mtok(input: f64, output: f64) -> Self {
        let micros = |usd: f64| (usd.max(0.0) * 1_000_000.0).round() as u64;
        Self {
            input_per_mtok_micros: micros(input),
            output_per_mtok_micros: micros(output),
        }
    }
}

/// Prices by model name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct PriceTable {
    prices: BTreeMap<String, ModelPrice>,
}

impl Default for PriceTable {
    /// A small table of OpenAI list prices (USD per million tokens, input/output).
    fn default() -> Self {
        Self::empty()
            .with_price("gpt-4o-mini", ModelPrice::usd_per_mtok(0.15, 0.60))
            .with_price("gpt-4o", ModelPrice::usd_per_mtok(2.50, 10.00))
            .with_price("gpt-4.1-nano", ModelPrice::usd_per_mtok(0.10, 0.40))
            .with_price("gpt-4.1-mini", ModelPrice::usd_per_mtok(0.40, 1.60))
            .with_price("gpt-4.1", ModelPrice::usd_per_mtok(2.00, 8.00))
    }
}

impl PriceTable {
    /// A table with no prices.
    pub fn empty() -> Self {
        Self {
            prices: BTreeMap::new(),
        }
    }

    /// Add or replace the price of `model` (use a zero price for free local models).
    pub fn with_price(mut self, model: impl Into<String>, price: ModelPrice) -> Self {
        self.prices.insert(model.into(), price);
        self
    }

    /// The price for `model`: exact match, else the longest key that prefixes it.
    pub fn price_for(&self, model: &str) -> Option<ModelPrice> {
        if let Some(price) = self.prices.get(model) {
            return Some(*price);
        }
        self.prices
            .iter()
            .filter(|(key, _)| model.starts_with(key.as_str()))
            .max_by_key(|(key, _)| key.len())
            .map(|(_, price)| *price)
    }
}

/// A cost and whether the model had a price.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct CostEstimate {
    /// Micro-dollars (0 when unpriced).
    pub micros: u64,
    /// False when the model is not in the table.
    pub priced: bool,
}

fn tokens_cost(tokens: u32, per_mtok: u64) -> u128 {
    (u128::from(tokens) * u128::from(per_mtok)).div_ceil(1_000_000)
}

/// Cost of `usage` on `model`, flagging unknown models.
pub fn estimate_cost(model: &str, usage: &Usage, prices: &PriceTable) -> CostEstimate {
    match prices.price_for(model) {
        None => CostEstimate {
            micros: 0,
            priced: false,
        },
        Some(price) => {
            let total = tokens_cost(usage.prompt_tokens, price.input_per_mtok_micros)
                + tokens_cost(usage.completion_tokens, price.output_per_mtok_micros);
            CostEstimate {
                micros: u64::try_from(total).unwrap_or(u64::MAX),
                priced: true,
            }
        }
    }
}

/// Cost of `usage` on `model` in micro-dollars; unknown models cost 0 and log a warning.
pub fn cost_micros(model: &str, usage: &Usage, prices: &PriceTable) -> u64 {
    let estimate = estimate_cost(model, usage, prices);
    if !estimate.priced {
        tracing::warn!(model, "no price for LLM model; counting its cost as 0");
    }
    estimate.micros
}

#[cfg(test)]
mod tests {
    use super::*;

    fn usage(prompt: u32, completion: u32) -> Usage {
        Usage {
            prompt_tokens: prompt,
            completion_tokens: completion,
        }
    }

    #[test]
    fn gpt_4o_mini_costs() {
        let table = PriceTable::default();
        // 1M in at $0.15 + 1M out at $0.60 = $0.75.
        assert_eq!(
            cost_micros("gpt-4o-mini", &usage(1_000_000, 1_000_000), &table),
            750_000
        );
        // 1000 in = 150 µ$, 200 out = 120 µ$.
        assert_eq!(cost_micros("gpt-4o-mini", &usage(1000, 200), &table), 270);
        // One token still costs something (rounded up).
        assert_eq!(cost_micros("gpt-4o-mini", &usage(1, 0), &table), 1);
        assert_eq!(cost_micros("gpt-4o-mini", &usage(0, 0), &table), 0);
    }

    #[test]
    fn dated_snapshots_use_the_longest_prefix() {
        let table = PriceTable::default();
        let mini = estimate_cost("gpt-4o-mini-2024-07-18", &usage(1000, 0), &table);
        assert_eq!(
            mini,
            CostEstimate {
                micros: 150,
                priced: true
            }
        );
        let full = estimate_cost("gpt-4o-2024-08-06", &usage(1000, 0), &table);
        assert_eq!(full.micros, 2500);
    }

    #[test]
    fn unknown_models_cost_zero_and_are_flagged() {
        let table = PriceTable::default();
        let e = estimate_cost("llama3.1:8b", &usage(5000, 5000), &table);
        assert_eq!(
            e,
            CostEstimate {
                micros: 0,
                priced: false
            }
        );
        let table = table.with_price("llama3.1", ModelPrice::usd_per_mtok(0.0, 0.0));
        assert!(estimate_cost("llama3.1:8b", &usage(5000, 5000), &table).priced);
    }

    #[test]
    fn table_is_configurable_from_json_and_saturates() {
        let table: PriceTable = serde_json::from_str(
            r#"{"my-model": {"input_per_mtok_micros": 1000000, "output_per_mtok_micros": 2000000}}"#,
        )
        .unwrap();
        assert_eq!(cost_micros("my-model", &usage(10, 10), &table), 30);
        let huge = PriceTable::empty().with_price(
            "x",
            ModelPrice {
                input_per_mtok_micros: u64::MAX,
                output_per_mtok_micros: u64::MAX,
            },
        );
        assert!(cost_micros("x", &usage(u32::MAX, u32::MAX), &huge) > 0);
    }
}
