//! Members of a campaign on Redis: adding (upsert by external id), reading, listing, changing, deleting,
//! terminating and reviving them, and the campaign's counters. Each operation is one script (`lua/*.lua`) or one
//! command on the campaign's keys (one hash tag, one slot).

use super::reply::{self, list, parse, resp};
use super::{ADD_CHUNK, ADD_IN_FLIGHT, RedisStore, change_outcome, keys};
use crate::campaign::member::MemberInput;
use crate::campaign::params::NumberOrder;
use crate::store::error::{StoreError, StoreResult};
use crate::store::memory::SCAN_SPAN;
use crate::store::record::{self, Prepared};
use crate::store::rules;
use crate::store::types::*;
use chrono::{DateTime, Utc};
use futures::StreamExt;
use redis::AsyncCommands;
use serde::Deserialize;
use std::collections::HashMap;

impl RedisStore {
    /// A member's arguments to `add.lua`/`update.lua`: its fields, then the number each number order would dial
    /// first (the claim's hint, see `claim.lua`).
    fn member_args(p: &Prepared) -> [String; 9] {
        let first = |order| {
            rules::choose_number(order, &p.nums, None).map_or(String::new(), |i| i.to_string())
        };
        [
            p.data.n.clone(),
            p.vars_json.clone(),
            p.comms_json.clone(),
            p.prio.to_string(),
            p.tz.clone().unwrap_or_default(),
            p.expire.map(|x| x.to_string()).unwrap_or_default(),
            record::pack_nums(&p.nums),
            p.ext.clone().unwrap_or_default(),
            format!(
                "{},{}",
                first(NumberOrder::ByPriority),
                first(NumberOrder::TopDown)
            ),
        ]
    }

    /// Adds members (upsert by external id), in pipelined chunks of [`ADD_CHUNK`]. Each chunk is atomic; if Redis
    /// fails mid-way, the chunks before the failure are stored (re-adding with external ids is idempotent).
    pub async fn add(
        &self,
        campaign: &str,
        members: &[MemberInput],
        now: DateTime<Utc>,
    ) -> StoreResult<Vec<AddOutcome>> {
        record::check_campaign(campaign)?;
        let prepared = members
            .iter()
            .enumerate()
            .map(|(i, m)| record::prepare(i, m))
            .collect::<StoreResult<Vec<Prepared>>>()?;
        if prepared.is_empty() {
            return Ok(Vec::new());
        }
        self.register(campaign).await?;
        self.remember_tzs(campaign, prepared.iter().map(|p| rules::tz_key(&p.tz)));
        let now = ms(now);
        let futures: Vec<_> = prepared
            .chunks(ADD_CHUNK)
            .map(|chunk| {
                let args: Vec<String> = chunk.iter().flat_map(Self::member_args).collect();
                self.add_chunk(campaign, now, args)
            })
            .collect();
        let results: Vec<StoreResult<Vec<AddOutcome>>> = futures::stream::iter(futures)
            .buffered(ADD_IN_FLIGHT)
            .collect()
            .await;
        let mut out = Vec::with_capacity(prepared.len());
        for r in results {
            out.extend(r?);
        }
        Ok(out)
    }

    async fn add_chunk(
        &self,
        campaign: &str,
        now: i64,
        args: Vec<String>,
    ) -> StoreResult<Vec<AddOutcome>> {
        let mut inv = self.campaign_script_once(&self.scripts.add, campaign);
        inv.arg(now);
        for a in args {
            inv.arg(a);
        }
        let out: redis::Value = inv
            .invoke_async(&mut self.conn())
            .await
            .map_err(StoreError::redis("add"))?;
        const OP: &str = "add";
        let v = resp::array(OP, &out)?;
        let mut next_new = resp::int(OP, resp::at(OP, v, 0)?)? as u64;
        let codes = resp::string(OP, resp::at(OP, v, 1)?)?;
        let mut upserts = v[2..].iter();
        let mut upsert = || -> StoreResult<MemberId> {
            let id = upserts.next().ok_or_else(|| StoreError::Corrupt {
                op: OP,
                detail: "fewer upsert ids than upserts".into(),
            })?;
            Ok(MemberId(resp::int(OP, id)? as u64))
        };
        codes
            .chars()
            .map(|code| match code {
                'a' => {
                    next_new += 1;
                    Ok(AddOutcome::Added(MemberId(next_new - 1)))
                }
                'u' => Ok(AddOutcome::Updated(upsert()?)),
                'c' => Ok(AddOutcome::InCall(upsert()?)),
                other => Err(StoreError::Corrupt {
                    op: OP,
                    detail: format!("unknown add outcome {other:?}"),
                }),
            })
            .collect()
    }

    async fn get_raw(
        &self,
        campaign: &str,
        id: MemberId,
        with_log: bool,
    ) -> StoreResult<Option<(Member, record::StaticData, Option<String>)>> {
        record::check_campaign(campaign)?;
        let out: String = self
            .campaign_script(&self.scripts.get, campaign)
            .arg(id.0)
            .arg(if with_log { "1" } else { "0" })
            .invoke_async(&mut self.conn())
            .await
            .map_err(StoreError::redis("get"))?;
        #[derive(Deserialize)]
        struct R {
            missing: Option<u8>,
            v: Option<(u64, Vec<serde_json::Value>)>,
            h: Option<serde_json::Value>,
        }
        let r: R = parse("get", &out)?;
        if r.missing.is_some() {
            return Ok(None);
        }
        let (mid, fields) = r.v.ok_or_else(|| StoreError::Corrupt {
            op: "get",
            detail: "reply without member".into(),
        })?;
        let (m, data) = reply::member_view(mid, &fields)
            .map_err(|detail| StoreError::Corrupt { op: "get", detail })?;
        let h = match r.h {
            Some(serde_json::Value::String(s)) => Some(s),
            _ => None,
        };
        Ok(Some((m, data, h)))
    }

    pub async fn get(&self, campaign: &str, id: MemberId) -> StoreResult<Option<Member>> {
        Ok(self.get_raw(campaign, id, false).await?.map(|(m, _, _)| m))
    }

    pub async fn attempts(&self, campaign: &str, id: MemberId) -> StoreResult<Vec<AttemptRecord>> {
        match self.get_raw(campaign, id, true).await? {
            None => Ok(Vec::new()),
            Some((_, data, h)) => reply::log_lines(id, &data, h.as_deref().unwrap_or("")),
        }
    }

    pub async fn update(
        &self,
        campaign: &str,
        id: MemberId,
        m: &MemberInput,
        now: DateTime<Utc>,
    ) -> StoreResult<ChangeOutcome> {
        record::check_campaign(campaign)?;
        let p = record::prepare(0, m)?;
        self.remember_tzs(campaign, [rules::tz_key(&p.tz)]);
        let mut inv = self.campaign_script(&self.scripts.update, campaign);
        inv.arg(ms(now)).arg(id.0);
        for a in Self::member_args(&p) {
            inv.arg(a);
        }
        let out: String = inv
            .invoke_async(&mut self.conn())
            .await
            .map_err(StoreError::redis("update"))?;
        #[derive(Deserialize)]
        struct R {
            taken: Option<u64>,
            r: Option<String>,
        }
        let r: R = parse("update", &out)?;
        if let Some(owner) = r.taken {
            return Err(StoreError::ExternalIdTaken {
                external_id: p.ext.unwrap_or_default(),
                owner,
            });
        }
        change_outcome("update", r.r.as_deref())
    }

    pub async fn delete(&self, campaign: &str, id: MemberId) -> StoreResult<ChangeOutcome> {
        record::check_campaign(campaign)?;
        let out: String = self
            .campaign_script_once(&self.scripts.delete, campaign)
            .arg(id.0)
            .invoke_async(&mut self.conn())
            .await
            .map_err(StoreError::redis("delete"))?;
        #[derive(Deserialize)]
        struct R {
            r: String,
        }
        let r: R = parse("delete", &out)?;
        change_outcome("delete", Some(&r.r))
    }

    pub async fn terminate(&self, campaign: &str, id: MemberId) -> StoreResult<TerminateOutcome> {
        record::check_campaign(campaign)?;
        let out: String = self
            .campaign_script_once(&self.scripts.terminate, campaign)
            .arg(id.0)
            .invoke_async(&mut self.conn())
            .await
            .map_err(StoreError::redis("terminate"))?;
        #[derive(Deserialize)]
        struct R {
            r: String,
            a: Option<uuid::Uuid>,
            g: Option<String>,
        }
        let r: R = parse("terminate", &out)?;
        Ok(match (r.r.as_str(), r.a, r.g) {
            ("terminated", _, _) => TerminateOutcome::Terminated,
            ("ended", _, _) => TerminateOutcome::AlreadyEnded,
            ("not_found", _, _) => TerminateOutcome::NotFound,
            ("kill", Some(attempt_id), Some(node)) => {
                TerminateOutcome::KillCall { attempt_id, node }
            }
            _ => {
                return Err(StoreError::Corrupt {
                    op: "terminate",
                    detail: out,
                });
            }
        })
    }

    /// Revives ended, unsuccessful members; runs in steps of [`SCAN_SPAN`] ids (each step atomic).
    pub async fn reset(&self, campaign: &str, now: DateTime<Utc>) -> StoreResult<u64> {
        record::check_campaign(campaign)?;
        let mut total = 0;
        let mut after: i64 = 0;
        loop {
            let out: String = self
                .campaign_script_once(&self.scripts.reset, campaign)
                .arg(ms(now))
                .arg(after)
                .arg(SCAN_SPAN)
                .invoke_async(&mut self.conn())
                .await
                .map_err(StoreError::redis("reset"))?;
            #[derive(Deserialize)]
            struct R {
                n: u64,
                next: i64,
            }
            let r: R = parse("reset", &out)?;
            total += r.n;
            if r.next < 0 {
                return Ok(total);
            }
            after = r.next;
        }
    }

    pub async fn counts(&self, campaign: &str) -> StoreResult<Counters> {
        record::check_campaign(campaign)?;
        let raw: HashMap<String, i64> = self
            .conn()
            .hgetall(keys::campaign_key(campaign, "cnt"))
            .await
            .map_err(StoreError::redis("counts"))?;
        let mut c = Counters::default();
        for (k, v) in raw {
            c.add(&k, v.max(0));
        }
        Ok(c)
    }

    pub async fn list(&self, campaign: &str, q: &ListQuery) -> StoreResult<ListPage> {
        record::check_campaign(campaign)?;
        let state = match q.state {
            None => "",
            Some(MemberState::Waiting) => "waiting",
            Some(MemberState::Active) => "active",
            Some(MemberState::Ended) => "ended",
        };
        let cause = q.end_cause.clone().unwrap_or_default();
        let name = q.name.as_deref().unwrap_or_default().to_ascii_lowercase();
        let mut after = q.after.map_or(0, |a| a.0);
        let start = after;
        let mut limit = q.limit;
        let mut members = Vec::new();
        loop {
            let out: String = self
                .campaign_script(&self.scripts.list, campaign)
                .arg(after)
                .arg(SCAN_SPAN)
                .arg(limit)
                .arg(state)
                .arg(&cause)
                .arg(&name)
                .invoke_async(&mut self.conn())
                .await
                .map_err(StoreError::redis("list"))?;
            #[derive(Deserialize)]
            struct R {
                #[serde(deserialize_with = "list")]
                v: Vec<(u64, Vec<serde_json::Value>)>,
                last: u64,
                more: u8,
            }
            let r: R = parse("list", &out)?;
            for (id, f) in r.v {
                let (m, _) = reply::member_view(id, &f)
                    .map_err(|detail| StoreError::Corrupt { op: "list", detail })?;
                members.push(m);
            }
            limit = q.limit - members.len();
            if r.more == 0 {
                return Ok(ListPage {
                    members,
                    next: None,
                });
            }
            after = r.last;
            if limit == 0 || q.max_examined.is_some_and(|m| after - start >= m) {
                return Ok(ListPage {
                    members,
                    next: Some(MemberId(after)),
                });
            }
        }
    }
}
