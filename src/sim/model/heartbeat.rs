//! The core's HEARTBEAT: FreeSWITCH 1.10 fires it from its scheduler every `event-heartbeat-interval` seconds
//! (default 20; `send_heartbeat` in switch_core.c) and the scheduler then fires RE_SCHEDULE for the task. ESL
//! clients use it as a sign of life and for the switch's load figures.
//!
//! Headers and their order follow the capture `fixtures/esl/realfs-2026-12/transfer_operator.recv.bin`. The rate
//! and session peaks come from the core's counters (`capacity`), as `status` gives them; `Idle-CPU` is 100 (a
//! simulated call costs no CPU). The caller (the ESL
//! server) decides when a heartbeat is due.

use super::Switch;

/// `switch_core_measure_time` as FreeSWITCH prints it: `0 years, 0 days, 0 hours, 1 minute, 19 seconds, …`.
fn up_time_text(us: u64) -> String {
    let parts = [
        (us / 31_536_000_000_000, "year"),
        ((us / 86_400_000_000) % 365, "day"),
        ((us / 3_600_000_000) % 24, "hour"),
        ((us / 60_000_000) % 60, "minute"),
        ((us / 1_000_000) % 60, "second"),
        ((us / 1000) % 1000, "millisecond"),
        (us % 1000, "microsecond"),
    ];
    parts
        .iter()
        .map(|(n, unit)| format!("{n} {unit}{}", if *n == 1 { "" } else { "s" }))
        .collect::<Vec<_>>()
        .join(", ")
}

impl Switch {
    /// Fires HEARTBEAT at `now`, then RE_SCHEDULE naming the next run `interval_sec` later.
    pub fn heartbeat(&mut self, now: u64, interval_sec: u64) {
        self.advance(now);
        let up = now.saturating_sub(self.started_us);
        let sps_now = self.limits.left_at(now);
        let rate = self.limits.stats();
        let seq = self.next_seq();
        let headers = [
            ("Event-Info", "System Ready".to_owned()),
            ("Up-Time", up_time_text(up)),
            ("FreeSWITCH-Version", "1.10.12-release~64bit".to_owned()),
            ("Uptime-msec", (up / 1000).to_string()),
            ("Session-Count", self.channels.len().to_string()),
            ("Max-Sessions", self.cfg.max_sessions.to_string()),
            ("Session-Per-Sec", sps_now.to_string()),
            ("Session-Per-Sec-Last", rate.last_second.to_string()),
            ("Session-Per-Sec-Max", rate.rate_peak.to_string()),
            (
                "Session-Per-Sec-FiveMin",
                rate.rate_peak_fivemin.to_string(),
            ),
            (
                "Session-Since-Startup",
                self.sessions_since_start.to_string(),
            ),
            ("Session-Peak-Max", rate.sessions_peak.to_string()),
            (
                "Session-Peak-FiveMin",
                rate.sessions_peak_fivemin.to_string(),
            ),
            ("Idle-CPU", format!("{:.6}", 100.0)),
        ];
        let refs: Vec<(&str, &str)> = headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
        self.fire_plain(
            "HEARTBEAT",
            seq,
            ("switch_core.c", "send_heartbeat", 95),
            &refs,
            None,
        );
        let seq = self.next_seq();
        let runtime = (now / 1_000_000 + interval_sec).to_string();
        self.fire_plain(
            "RE_SCHEDULE",
            seq,
            ("switch_scheduler.c", "switch_scheduler_execute", 73),
            &[
                ("Task-ID", "1"),
                ("Task-Desc", "heartbeat"),
                ("Task-Group", "core"),
                ("Task-Runtime", &runtime),
            ],
            None,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::model::{Config, Interest};
    use crate::sim::scenario::Scenario;

    #[test]
    fn up_time_reads_like_freeswitch_with_singular_units() {
        let us = 79_555_835 + 3_600_000_000 + 86_400_000_000;
        assert_eq!(
            up_time_text(us),
            "0 years, 1 day, 1 hour, 1 minute, 19 seconds, 555 milliseconds, 835 microseconds"
        );
    }

    #[test]
    fn heartbeat_then_re_schedule_carry_the_captured_headers_in_order() {
        let start = 1_796_512_988_533_000;
        let mut sw = Switch::new(Config::default(), Scenario::builtin(), start);
        sw.set_interest(Interest::All);
        let now = start + 79_555_835;
        sw.heartbeat(now, 20);
        let events = sw.take_events();
        assert_eq!(events.len(), 2);
        let hb = &events[0];
        let names: Vec<String> = hb
            .headers()
            .map(|(n, _)| String::from_utf8_lossy(n).into_owned())
            .collect();
        let tail = &names[names.iter().position(|n| n == "Event-Info").unwrap()..];
        assert_eq!(
            tail,
            [
                "Event-Info",
                "Up-Time",
                "FreeSWITCH-Version",
                "Uptime-msec",
                "Session-Count",
                "Max-Sessions",
                "Session-Per-Sec",
                "Session-Per-Sec-Last",
                "Session-Per-Sec-Max",
                "Session-Per-Sec-FiveMin",
                "Session-Since-Startup",
                "Session-Peak-Max",
                "Session-Peak-FiveMin",
                "Idle-CPU",
            ]
        );
        assert_eq!(hb.name(), Some("HEARTBEAT"));
        assert_eq!(hb.get("Event-Calling-Function"), Some("send_heartbeat"));
        assert_eq!(hb.get("Uptime-msec"), Some("79555"));
        assert_eq!(hb.get("Session-Count"), Some("0"));
        assert_eq!(hb.get("Max-Sessions"), Some("1000"));
        assert_eq!(
            hb.get("Event-Date-Timestamp"),
            Some(now.to_string().as_str())
        );
        let re = &events[1];
        assert_eq!(re.name(), Some("RE_SCHEDULE"));
        assert_eq!(re.get("Task-Desc"), Some("heartbeat"));
        assert_eq!(
            re.get("Task-Runtime"),
            Some((now / 1_000_000 + 20).to_string().as_str())
        );
        let seq = |e: &crate::esl::Event| e.get("Event-Sequence").unwrap().parse::<u64>().unwrap();
        assert_eq!(seq(re), seq(hb) + 1);
    }

    #[test]
    fn nobody_subscribed_means_no_heartbeat_is_built() {
        let mut sw = Switch::new(Config::default(), Scenario::builtin(), 0);
        sw.set_interest(Interest::Only(["CHANNEL_CREATE".to_owned()].into()));
        sw.heartbeat(20_000_000, 20);
        assert!(sw.take_events().is_empty());
    }
}
