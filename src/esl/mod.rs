//! The FreeSWITCH Event Socket (ESL) protocol.
