//! FreeSWITCH hangup causes: names and their numeric codes (`switch_call_cause_t`), for `error/CAUSE`,
//! `variable_hangup_cause_q850` and `hangup <cause>`.
//!
//! The name/number pairs are FreeSWITCH 1.10's public cause chart; lookups follow `switch_channel_str2cause`
//! (a leading digit means a number, names compare case-insensitively, an unknown name means NORMAL_CLEARING).

/// (name, code) for every cause FreeSWITCH 1.10 knows.
pub const CAUSES: &[(&str, u32)] = &[
    ("NONE", 0),
    ("UNALLOCATED_NUMBER", 1),
    ("NO_ROUTE_TRANSIT_NET", 2),
    ("NO_ROUTE_DESTINATION", 3),
    ("CHANNEL_UNACCEPTABLE", 6),
    ("CALL_AWARDED_DELIVERED", 7),
    ("NORMAL_CLEARING", 16),
    ("USER_BUSY", 17),
    ("NO_USER_RESPONSE", 18),
    ("NO_ANSWER", 19),
    ("SUBSCRIBER_ABSENT", 20),
    ("CALL_REJECTED", 21),
    ("NUMBER_CHANGED", 22),
    ("REDIRECTION_TO_NEW_DESTINATION", 23),
    ("EXCHANGE_ROUTING_ERROR", 25),
    ("DESTINATION_OUT_OF_ORDER", 27),
    ("INVALID_NUMBER_FORMAT", 28),
    ("FACILITY_REJECTED", 29),
    ("RESPONSE_TO_STATUS_ENQUIRY", 30),
    ("NORMAL_UNSPECIFIED", 31),
    ("NORMAL_CIRCUIT_CONGESTION", 34),
    ("NETWORK_OUT_OF_ORDER", 38),
    ("NORMAL_TEMPORARY_FAILURE", 41),
    ("SWITCH_CONGESTION", 42),
    ("ACCESS_INFO_DISCARDED", 43),
    ("REQUESTED_CHAN_UNAVAIL", 44),
    ("PRE_EMPTED", 45),
    ("FACILITY_NOT_SUBSCRIBED", 50),
    ("OUTGOING_CALL_BARRED", 52),
    ("INCOMING_CALL_BARRED", 54),
    ("BEARERCAPABILITY_NOTAUTH", 57),
    ("BEARERCAPABILITY_NOTAVAIL", 58),
    ("SERVICE_UNAVAILABLE", 63),
    ("BEARERCAPABILITY_NOTIMPL", 65),
    ("CHAN_NOT_IMPLEMENTED", 66),
    ("FACILITY_NOT_IMPLEMENTED", 69),
    ("SERVICE_NOT_IMPLEMENTED", 79),
    ("INVALID_CALL_REFERENCE", 81),
    ("INCOMPATIBLE_DESTINATION", 88),
    ("INVALID_MSG_UNSPECIFIED", 95),
    ("MANDATORY_IE_MISSING", 96),
    ("MESSAGE_TYPE_NONEXIST", 97),
    ("WRONG_MESSAGE", 98),
    ("IE_NONEXIST", 99),
    ("INVALID_IE_CONTENTS", 100),
    ("WRONG_CALL_STATE", 101),
    ("RECOVERY_ON_TIMER_EXPIRE", 102),
    ("MANDATORY_IE_LENGTH_ERROR", 103),
    ("PROTOCOL_ERROR", 111),
    ("INTERWORKING", 127),
    ("SUCCESS", 142),
    ("ORIGINATOR_CANCEL", 487),
    ("CRASH", 700),
    ("SYSTEM_SHUTDOWN", 701),
    ("LOSE_RACE", 702),
    ("MANAGER_REQUEST", 703),
    ("BLIND_TRANSFER", 800),
    ("ATTENDED_TRANSFER", 801),
    ("ALLOTTED_TIMEOUT", 802),
    ("USER_CHALLENGE", 803),
    ("MEDIA_TIMEOUT", 804),
    ("PICKED_OFF", 805),
    ("USER_NOT_REGISTERED", 806),
    ("PROGRESS_TIMEOUT", 807),
    ("INVALID_GATEWAY", 808),
    ("GATEWAY_DOWN", 809),
    ("INVALID_URL", 810),
    ("INVALID_PROFILE", 811),
    ("NO_PICKUP", 812),
    ("SRTP_READ_ERROR", 813),
    ("BOWOUT", 814),
    ("BUSY_EVERYWHERE", 815),
    ("DECLINE", 816),
    ("DOES_NOT_EXIST_ANYWHERE", 817),
    ("NOT_ACCEPTABLE", 818),
    ("UNWANTED", 819),
    ("NO_IDENTITY", 820),
    ("BAD_IDENTITY_INFO", 821),
    ("UNSUPPORTED_CERTIFICATE", 822),
    ("INVALID_IDENTITY", 823),
    ("STALE_DATE", 824),
    ("REJECT_ALL", 825),
];

/// The name of a cause code (`switch_channel_cause2str`): `UNKNOWN` for a code not in the chart.
pub fn cause2str(code: u32) -> &'static str {
    CAUSES
        .iter()
        .find(|(_, c)| *c == code)
        .map(|(n, _)| *n)
        .unwrap_or("UNKNOWN")
}

/// The code of a cause name (case-insensitive), if known.
pub fn code_of(name: &str) -> Option<u32> {
    CAUSES
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, c)| *c)
}

/// `switch_channel_str2cause`: a number when it starts with a digit, a known name, else NORMAL_CLEARING.
pub fn str2cause_code(text: &str) -> u32 {
    if text.as_bytes().first().is_some_and(u8::is_ascii_digit) {
        return u32::try_from(crate::sim::originate::atoi(text)).unwrap_or(0);
    }
    if text.is_empty() {
        return 16;
    }
    code_of(text).unwrap_or(16)
}

/// The cause name `str2cause` resolves to, or `None` when it resolves to NONE (code 0).
pub fn str2cause(text: &str) -> Option<&'static str> {
    match str2cause_code(text) {
        0 => None,
        code => Some(cause2str(code)),
    }
}

/// `variable_hangup_cause_q850` for a cause name (FreeSWITCH reports the chart code; 0 when unknown).
pub fn q850(name: &str) -> u32 {
    code_of(name).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_numbers_and_unknowns_resolve_like_freeswitch() {
        assert_eq!(str2cause("USER_BUSY"), Some("USER_BUSY"));
        assert_eq!(str2cause("user_busy"), Some("USER_BUSY"));
        assert_eq!(str2cause("17"), Some("USER_BUSY"));
        assert_eq!(str2cause("BOGUS"), Some("NORMAL_CLEARING"));
        assert_eq!(str2cause("0"), None);
        assert_eq!(str2cause("5"), Some("UNKNOWN"));
        assert_eq!(q850("NORMAL_CLEARING"), 16);
        assert_eq!(q850("ORIGINATOR_CANCEL"), 487);
    }
}
