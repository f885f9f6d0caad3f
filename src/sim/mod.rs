//! A simulated FreeSWITCH 1.10 that speaks real ESL, for engine tests, the demo and load benchmarks.
//!
//! FreeSWITCH cannot be installed where fsdialer is developed and tested, so the dialer is exercised against
//! this switch instead. It is built to be indistinguishable, for everything a dialer sees, from the real one
//! captured in `fixtures/esl/`: the same `originate` parsing quirks ([`originate`]), the same event names,
//! order and headers for each call outcome ([`model`]), the same ESL replies ([`server`]). What each call does
//! comes from a scenario ([`scenario`]) or from the built-in dialplan the captures were made with.
//!
//! Layout: pure parts first (`originate`, `causes`, `scenario`, `clock`, `model`), then the IO shell (`server`,
//! `cli`). The model is driven by a clock so tests run in virtual time and the server in real (or sped-up) time.

pub mod causes;
pub mod cli;
pub mod model;
pub mod originate;
pub mod scenario;
pub mod server;
