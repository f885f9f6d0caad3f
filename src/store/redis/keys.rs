//! Redis key names. Every key of a campaign starts with `dlr:{<campaign>}:`; the braces are a Redis Cluster hash
//! tag, so a campaign's keys share one slot and its scripts may touch them all. Gateways are shared by campaigns
//! and get their own tag, `dlr:{gw:<name>}:`.

/// The prefix of a campaign's keys; scripts get it as `KEYS[1]` and derive every key from it.
pub fn campaign_prefix(campaign: &str) -> String {
    format!("dlr:{{{campaign}}}:")
}

/// The keys every campaign script declares, after the prefix (`KEYS[2]`… in `lua/prelude.lua`, same order).
/// Member records (`m:<id>`) are found while a script runs (in the ready and wait sets), so they cannot be
/// declared; they carry the same hash tag, hence the same slot.
pub const CAMPAIGN_SCRIPT_KEYS: [&str; 11] = [
    "seq", "ready", "wait", "lease", "act", "ext", "tzs", "cnt", "meta", "log", "causes",
];

/// `KEYS` of a campaign script: the prefix, then [`CAMPAIGN_SCRIPT_KEYS`].
pub fn campaign_script_keys(campaign: &str) -> impl Iterator<Item = String> + '_ {
    std::iter::once(campaign_prefix(campaign)).chain(
        CAMPAIGN_SCRIPT_KEYS
            .iter()
            .map(move |k| campaign_key(campaign, k)),
    )
}

/// Where a writing script keeps its reply for a resend of the same call (`KEYS[13]`; `call` is unique per call,
/// the same for its resends; see `memo_keep` in `lua/prelude.lua`).
pub fn memo_key(campaign: &str, call: &uuid::Uuid) -> String {
    format!("dlr:{{{campaign}}}:memo:{call}")
}

/// A key of the campaign (`tzs`, `cnt`, `lease`...).
pub fn campaign_key(campaign: &str, name: &str) -> String {
    format!("dlr:{{{campaign}}}:{name}")
}

/// A member's record (see `redis/packed.rs`).
pub fn member_key(campaign: &str, id: u64) -> String {
    format!("dlr:{{{campaign}}}:m:{}", crate::store::rules::id_token(id))
}

/// A gateway's slot pool (ZSET attempt → lease expiry).
pub fn gateway_slots(gateway: &str) -> String {
    format!("dlr:{{gw:{gateway}}}:slots")
}

/// A gateway's calls-per-second bucket.
pub fn gateway_bucket(gateway: &str) -> String {
    format!("dlr:{{gw:{gateway}}}:cps")
}

/// Where one `take_tokens` call keeps its grant for a resend of the call (`call` is unique per call): the
/// bucket's key (hence its hash tag) with `:memo:<call>`.
pub fn bucket_memo(bucket: &str, call: &uuid::Uuid) -> String {
    format!("{bucket}:memo:{call}")
}

/// A campaign's calls-per-second bucket.
pub fn campaign_bucket(campaign: &str) -> String {
    campaign_key(campaign, "cps")
}

/// The set of known campaign names (global, outside any campaign's slot).
pub const CAMPAIGNS: &str = "dlr:campaigns";

/// Campaign documents saved by the API (hash: campaign id → JSON; see `store::docs`).
pub const CAMPAIGN_DOCS: &str = "dlr:campaign_docs";
/// A counter bumped after every change of a campaign document: nodes poll it (one `GET`) to follow changes fast.
pub const CAMPAIGN_DOCS_GENERATION: &str = "dlr:campaign_docs_gen";
/// The engine nodes alive: node → when it last said so (`store::nodes`).
pub const NODES: &str = "dlr:nodes";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn campaign_keys_share_the_hash_tag() {
        assert_eq!(campaign_prefix("c1"), "dlr:{c1}:");
        assert_eq!(member_key("c1", 42), "dlr:{c1}:m:000000002a");
        assert_eq!(gateway_slots("gw1"), "dlr:{gw:gw1}:slots");
    }
}
