//! Shared helpers for integration tests.

pub mod esl_server;
