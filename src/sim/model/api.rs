//! The api commands a dialer sends (everything except originate), answered with FreeSWITCH 1.10's own reply texts
//! (`fixtures/esl/api_replies.bin`): `uuid_*`, `show`, `fsctl`, `hupall`, `sched_hangup`, `status`, ….
//!
//! Apart from the applications (`apps`) because an api command runs outside any channel's dialplan: it reads or
//! changes the switch as a whole and answers with text, where an application runs on one channel and answers
//! with events.

use super::{Channel, Switch, Timer};
use crate::sim::originate::atoi;

/// The text of an api command (everything except originate).
pub(super) fn api_reply(sw: &mut Switch, cmd: &str, arg: &str) -> String {
    let now = sw.now;
    let args: Vec<&str> = arg.split_whitespace().collect();
    match cmd.to_ascii_lowercase().as_str() {
        "status" => {
            let up = now.saturating_sub(sw.started_us);
            let (n, total) = sw.status_counts();
            let rate = sw.limits.stats();
            let s = up / 1_000_000;
            format!(
                "UP 0 years, {} days, {} hours, {} minutes, {} seconds, {} milliseconds, {} microseconds\nFreeSWITCH (Version 1.10.12-release  64bit) is ready\n{} session(s) since startup\n{} session(s) - peak {}, last 5min {} \n{} session(s) per Sec out of max {}, peak {}, last 5min {} \n{} session(s) max\nmin idle cpu 0.00/100.00\nCurrent Stack Size/Max 240K/8192K\n",
                s / 86400,
                (s / 3600) % 24,
                (s / 60) % 60,
                s % 60,
                (up / 1000) % 1000,
                up % 1000,
                total,
                n,
                rate.sessions_peak,
                rate.sessions_peak_fivemin,
                rate.last_second,
                sw.limits.per_second,
                rate.rate_peak,
                rate.rate_peak_fivemin,
                sw.limits.max_sessions
            )
        }
        "version" => "FreeSWITCH Version 1.10.12-release~64bit ( 64bit)\n".into(),
        "fsctl" => fsctl(sw, &args),
        // mod_commands' file_exists stats the path as given (FreeSWITCH's working directory for a relative one).
        "file_exists" => {
            let exists = arg.starts_with('/') && sw.scenario.file_exists(arg, sw.sound_prefix());
            exists.to_string()
        }
        "hostname" => sw.cfg.identity.hostname.clone(),
        "uptime" => format!("{}\n", now.saturating_sub(sw.started_us) / 1_000_000),
        "module_exists" => if matches!(
            arg,
            "mod_loopback"
                | "mod_sofia"
                | "mod_commands"
                | "mod_dptools"
                | "mod_event_socket"
                | "mod_hash"
        ) {
            "true"
        } else {
            "false"
        }
        .into(),
        "global_getvar" => sw
            .vars_global
            .get(arg)
            .map(str::to_string)
            .unwrap_or_default(),
        "global_setvar" => {
            if let Some((k, v)) = arg.split_once('=') {
                sw.vars_global.add(k.trim(), v.trim());
            }
            "+OK\n".into()
        }
        "eval" => arg.replace("${hostname}", &sw.cfg.identity.hostname),
        "hash" => sw.hash_db.api(arg),
        "hash_dump" => sw.hash_db.dump(arg),
        "uuid_exists" => (args.first().is_some_and(|u| sw.channels.contains_key(*u))).to_string(),
        "uuid_kill" => match args
            .first()
            .and_then(|u| sw.channels.get(*u))
            .map(|c| c.uuid.clone())
        {
            Some(u) => {
                let cause = args
                    .get(1)
                    .and_then(|c| crate::sim::causes::str2cause(c))
                    .unwrap_or("NORMAL_CLEARING")
                    .to_string();
                sw.hangup(&u, &cause);
                "+OK\n".into()
            }
            None => "-ERR No such channel!\n".into(),
        },
        // mod_commands' `sched_hangup [+]<time> <uuid> [<cause>]`: seconds from now with `+`, else an epoch second;
        // the cause defaults to ALLOTTED_TIMEOUT. (switchio hangs its calls up with it.)
        "sched_hangup" => sched_hangup(sw, &args),
        "uuid_getvar" => match (args.first().and_then(|u| sw.channels.get(*u)), args.get(1)) {
            (Some(ch), Some(v)) => ch
                .vars
                .get(v)
                .map(str::to_string)
                .unwrap_or_else(|| "_undef_".into()),
            (None, _) => "-ERR No such channel!\n".into(),
            _ => "-USAGE: <uuid> <var>\n".into(),
        },
        "uuid_setvar" => {
            let mut it = arg.splitn(3, ' ');
            let (u, k, v) = (
                it.next().unwrap_or(""),
                it.next().unwrap_or(""),
                it.next().unwrap_or(""),
            );
            match sw.channels.get_mut(u) {
                Some(ch) if !k.is_empty() => {
                    ch.vars.set_checked(k, v, false);
                    "+OK\n".into()
                }
                Some(_) => "-USAGE: <uuid> <var> [value]\n".into(),
                None => "-ERR No such channel!\n".into(),
            }
        }
        "uuid_broadcast" => sw.uuid_broadcast_api(&args),
        "uuid_bridge" => sw.uuid_bridge_api(&args),
        "hupall" => {
            let cause = args
                .first()
                .and_then(|c| crate::sim::causes::str2cause(c))
                .unwrap_or("MANAGER_REQUEST")
                .to_string();
            let (var, val) = (args.get(1).copied(), args.get(2).copied());
            let targets: Vec<String> = sw
                .channels
                .values()
                .filter(|c| {
                    c.outbound
                        && match (var, val) {
                            (Some(k), Some(v)) => c.vars.get(k) == Some(v),
                            _ => true,
                        }
                })
                .map(|c| c.uuid.clone())
                .collect();
            for u in targets {
                sw.hangup(&u, &cause);
            }
            hupall_reply(&cause, var.zip(val))
        }
        "show" => show(sw, &args),
        _ => format!("-ERR {cmd} Command not found!\n"),
    }
}

/// mod_commands' `hupall` reply: the filter named when a variable and a value were both given.
fn hupall_reply(cause: &str, filter: Option<(&str, &str)>) -> String {
    match filter {
        Some((var, val)) => {
            format!("+OK hangup all channels matching [{var}]=[{val}] with cause: {cause}\n")
        }
        None => format!("+OK hangup all channels with cause {cause}\n"),
    }
}

fn sched_hangup(sw: &mut Switch, args: &[&str]) -> String {
    let (Some(when), Some(uuid)) = (args.first(), args.get(1)) else {
        return "-USAGE: [+]<time> <uuid> [<cause>]\n".into();
    };
    let at_us = match when.strip_prefix('+') {
        Some(secs) => sw.now + atoi(secs).max(0) as u64 * 1_000_000,
        None => (atoi(when).max(0) as u64 * 1_000_000).max(sw.now),
    };
    if !sw.channels.contains_key(*uuid) {
        return "-ERR No such channel!\n".into();
    }
    let cause = args
        .get(2)
        .and_then(|c| crate::sim::causes::str2cause(c))
        .unwrap_or("ALLOTTED_TIMEOUT")
        .to_string();
    let after_ms = at_us.saturating_sub(sw.now) / 1000;
    sw.schedule(
        after_ms,
        Timer::ScheduledHangup {
            uuid: (*uuid).to_string(),
            cause,
        },
    );
    "+OK\n".into()
}

/// mod_commands' `CTL_SYNTAX` (signalwire/freeswitch master; 1.10.12's lacks `uuid_version`).
const CTL_SYNTAX: &str = "[api_expansion [on|off]|recover|send_sighup|hupall|pause [inbound|outbound]|resume [inbound|outbound]|shutdown [cancel|elegant|asap|now|restart]|uuid_version [4|7]|sps|sps_peak_reset|sync_clock|sync_clock_when_idle|reclaim_mem|max_sessions|min_dtmf_duration [num]|max_dtmf_duration [num]|default_dtmf_duration [num]|min_idle_cpu|loglevel [level]|debug_level [level]|mdns_resolve [enable|disable]]";

/// `fsctl max_sessions [n]` and `fsctl sps [n]` as mod_commands answers them (reading with no argument, setting
/// with one), `fsctl last_sps`; the simulator knows no other subcommand.
fn fsctl(sw: &mut Switch, args: &[&str]) -> String {
    let what = args
        .first()
        .map(|a| a.to_ascii_lowercase())
        .unwrap_or_default();
    let value = args.get(1).map(|v| atoi(v)).filter(|v| *v > 0);
    let value = value.and_then(|v| u32::try_from(v).ok());
    match what.as_str() {
        "max_sessions" => {
            if let Some(v) = value {
                sw.limits.max_sessions = v;
            }
            format!("+OK max sessions: {}\n", sw.limits.max_sessions)
        }
        "sps" => {
            if let Some(v) = value {
                sw.limits.per_second = v;
            }
            format!("+OK sessions per second: {}\n", sw.limits.per_second)
        }
        "last_sps" => format!(
            "+OK last sessions per second: {}\n",
            sw.limits.last_second()
        ),
        "" => format!("-USAGE: {CTL_SYNTAX}\n"),
        _ => format!("-ERR Invalid command\nUSAGE: fsctl {CTL_SYNTAX}\n"),
    }
}

fn show(sw: &Switch, args: &[&str]) -> String {
    let what = args
        .first()
        .map(|s| s.to_ascii_lowercase())
        .unwrap_or_default();
    let host = sw.cfg.identity.hostname.clone();
    let mut chans: Vec<&Channel> = sw.channels.values().collect();
    chans.sort_by(|a, b| (a.created_us, &a.name).cmp(&(b.created_us, &b.name)));
    match what.as_str() {
        "channels" | "calls" => {
            if args.get(1).is_some_and(|a| a.eq_ignore_ascii_case("count")) {
                return format!("\n{} total.\n", chans.len());
            }
            let as_json = args.get(1).is_some_and(|a| a.eq_ignore_ascii_case("as")) && args.get(2).is_some_and(|a| a.eq_ignore_ascii_case("json"));
            let rows: Vec<Vec<(&'static str, String)>> = chans.iter().map(|c| c.show_row(&host)).collect();
            if as_json {
                if rows.is_empty() {
                    return "{\"row_count\": 0}\n".into();
                }
                let list: Vec<serde_json::Value> = rows
                    .iter()
                    .map(|r| serde_json::Value::Object(r.iter().map(|(k, v)| ((*k).to_string(), serde_json::Value::String(v.clone()))).collect()))
                    .collect();
                let obj = serde_json::json!({"row_count": rows.len(), "rows": list});
                return obj.to_string();
            }
            if rows.is_empty() {
                return "\n0 total.\n".into();
            }
            let mut out = String::new();
            out.push_str(&rows[0].iter().map(|(k, _)| *k).collect::<Vec<_>>().join(","));
            out.push('\n');
            for r in &rows {
                out.push_str(&r.iter().map(|(_, v)| v.as_str()).collect::<Vec<_>>().join(","));
                out.push('\n');
            }
            out.push_str(&format!("\n{} total.\n", rows.len()));
            out
        }
        _ => "-USAGE: codec|endpoint|application|api|dialplan|file|timer|calls [count]|channels [count|like <match string>]|calls|detailed_calls|bridged_calls|detailed_bridged_calls|aliases|complete|chat|management|modules|nat_map|say|interfaces|interface_types|tasks|limits|status\n".into(),
    }
}
