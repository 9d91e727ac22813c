//! # neuroflow-agent
//!
//! Agents: LLM providers (OpenAI-compatible, Anthropic, scripted) and the conversation loop.

pub mod agent;
pub mod provider;
pub mod sse;
