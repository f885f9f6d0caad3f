//! When the next call may be placed, and on which switch.
//!
//! Three rules, each in one place:
//! - **the schedule**: calls are spread evenly, call `k` due `k / rate` seconds after the start (with `--ramp-up`
//!   the rate rises linearly from 0, so the first `rate × ramp / 2` calls take the ramp's time). Calls due in the
//!   last [`CATCH_UP`] are placed at once (a timer that woke late, or a rate above the timer's resolution); a run
//!   that fell further behind (every call slot busy, a switch's limit) starts the schedule again from where it is
//!   instead of catching up in a burst;
//! - **the asked rate**: never more than `ceil(rate)` calls in any one-second window of the wall clock (so in
//!   any whole second), whatever the timer's jitter: [`crate::engine::pacing::SessionWindow`];
//! - **each switch's own `sessions-per-second`** (unless `--force`): the engine's rule for a FreeSWITCH node
//!   ([`SessionWindow::for_switch`]), on the switch's clock (real time × `--speed`), counted in sessions: a call
//!   goes only when the switch has room for all its sessions (2 for a loopback call), and takes them all.
//!
//! Pure: time comes in as an argument.

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};

use crate::engine::pacing::SessionWindow;

/// How late a call may be and still be caught up with (placed at once after the one before).
pub const CATCH_UP: Duration = Duration::from_millis(200);

/// The even schedule of the asked rate, with its ramp.
#[derive(Debug, Clone)]
pub struct Schedule {
    rate: f64,
    ramp: f64,
}

impl Schedule {
    pub fn new(rate: f64, ramp_up: Duration) -> Schedule {
        Schedule {
            rate,
            ramp: ramp_up.as_secs_f64(),
        }
    }

    /// Seconds from the start at which call `k` (from 0) is due.
    pub fn due(&self, k: u64) -> f64 {
        let k = k as f64;
        // Calls placed by time t: rate·t²/(2·ramp) during the ramp, then rate·ramp/2 + rate·(t − ramp).
        let in_ramp = self.rate * self.ramp / 2.0;
        if k < in_ramp {
            (2.0 * k * self.ramp / self.rate).sqrt()
        } else {
            self.ramp + (k - in_ramp) / self.rate
        }
    }
}

/// One switch's pacing state.
#[derive(Debug, Clone)]
struct SwitchPace {
    /// `None` with `--force`, or when the switch's limit is not known.
    window: Option<SessionWindow>,
}

/// The pacer of a run.
#[derive(Debug)]
pub struct Pacer {
    start: Instant,
    wall_start: DateTime<Utc>,
    speed: f64,
    schedule: Schedule,
    /// Added to the schedule each time the run fell behind.
    offset: Duration,
    next: u64,
    asked: SessionWindow,
    switches: Vec<SwitchPace>,
    next_switch: usize,
    /// Sessions each call takes from a switch's window.
    sessions_per_call: u32,
}

/// Where the next call goes, and when.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Place it now on switch `index`.
    Place { switch: usize },
    /// Come back at this time.
    Wait(Instant),
}

impl Pacer {
    /// `switch_sps`: each switch's `sessions-per-second` to respect (`None`: not paced by it), each call taking
    /// `sessions_per_call` of them.
    pub fn new(
        start: Instant,
        wall_start: DateTime<Utc>,
        rate: f64,
        ramp_up: Duration,
        speed: f64,
        switch_sps: &[Option<u32>],
        sessions_per_call: u32,
    ) -> Pacer {
        Pacer {
            start,
            wall_start,
            speed,
            schedule: Schedule::new(rate, ramp_up),
            offset: Duration::ZERO,
            next: 0,
            asked: SessionWindow::new(rate.ceil().min(f64::from(u32::MAX)) as u32),
            switches: switch_sps
                .iter()
                .map(|sps| SwitchPace {
                    window: sps.map(SessionWindow::for_switch),
                })
                .collect(),
            next_switch: 0,
            sessions_per_call: sessions_per_call.max(1),
        }
    }

    fn wall(&self, at: Instant) -> DateTime<Utc> {
        self.wall_start + at.saturating_duration_since(self.start)
    }

    /// The switch's clock: its seconds run `speed` times faster than ours.
    fn switch_clock(&self, at: Instant) -> DateTime<Utc> {
        let real = at.saturating_duration_since(self.start).as_secs_f64();
        self.wall_start + Duration::from_secs_f64(real * self.speed)
    }

    fn instant_of_switch_time(&self, t: DateTime<Utc>) -> Instant {
        let switch_secs = (t - self.wall_start).num_microseconds().unwrap_or(i64::MAX) as f64 / 1e6;
        self.start + Duration::from_secs_f64((switch_secs / self.speed).max(0.0))
    }

    fn instant_of_wall_time(&self, t: DateTime<Utc>) -> Instant {
        let secs = (t - self.wall_start).num_microseconds().unwrap_or(i64::MAX) as f64 / 1e6;
        self.start + Duration::from_secs_f64(secs.max(0.0))
    }

    /// When the next call is due by the schedule.
    pub fn due(&self) -> Instant {
        self.start + self.offset + Duration::from_secs_f64(self.schedule.due(self.next))
    }

    /// Whether a call may go now, and where; [`placed`](Self::placed) must follow a `Place`.
    pub fn decide(&mut self, now: Instant) -> Decision {
        let due = self.due();
        if now < due {
            return Decision::Wait(due);
        }
        let wall = self.wall(now);
        if self.asked.available(wall) == 0 {
            let at = self.asked.next_token_at(wall);
            return Decision::Wait(
                self.instant_of_wall_time(at)
                    .max(now + Duration::from_micros(1)),
            );
        }
        let clock = self.switch_clock(now);
        let n = self.switches.len();
        let mut earliest: Option<Instant> = None;
        for i in 0..n {
            let index = (self.next_switch + i) % n;
            let Some(window) = self.switches[index].window.as_mut() else {
                return Decision::Place { switch: index };
            };
            if window.available(clock) >= self.sessions_per_call.min(window.limit()) {
                return Decision::Place { switch: index };
            }
            let at = window.next_room_at(self.sessions_per_call, clock);
            let at = self
                .instant_of_switch_time(at)
                .max(now + Duration::from_micros(1));
            earliest = Some(earliest.map_or(at, |e| e.min(at)));
        }
        Decision::Wait(earliest.unwrap_or(now))
    }

    /// Records a call placed at `now` on `switch`.
    pub fn placed(&mut self, switch: usize, now: Instant) {
        let wall = self.wall(now);
        self.asked.take(1, wall);
        let clock = self.switch_clock(now);
        if let Some(window) = self
            .switches
            .get_mut(switch)
            .and_then(|s| s.window.as_mut())
        {
            window.take(self.sessions_per_call.min(window.limit()), clock);
        }
        self.next_switch = (switch + 1) % self.switches.len().max(1);
        let due = self.due();
        let interval = Duration::from_secs_f64(
            self.schedule.due(self.next + 1) - self.schedule.due(self.next),
        );
        // Late by more than a whole interval and the catch-up allowance: start again from here rather than catch up
        // in a burst.
        if now > due + interval.max(CATCH_UP) {
            self.offset += now - due;
        }
        self.next += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn place_all(pacer: &mut Pacer, start: Instant, calls: usize) -> Vec<(Instant, usize)> {
        let mut now = start;
        let mut placed = Vec::new();
        while placed.len() < calls {
            match pacer.decide(now) {
                Decision::Place { switch } => {
                    pacer.placed(switch, now);
                    placed.push((now, switch));
                }
                Decision::Wait(at) => {
                    assert!(at > now, "a wait moves time forward");
                    now = at;
                }
            }
        }
        placed
    }

    fn most_in_any_second(times: &[Instant], speed: f64) -> usize {
        times
            .iter()
            .map(|&from| {
                times
                    .iter()
                    .filter(|&&t| t >= from && (t - from).as_secs_f64() * speed < 1.0)
                    .count()
            })
            .max()
            .unwrap_or(0)
    }

    #[test]
    fn calls_are_spread_evenly_at_the_asked_rate() {
        let start = Instant::now();
        let mut p = Pacer::new(start, Utc::now(), 10.0, Duration::ZERO, 1.0, &[None], 1);
        let placed = place_all(&mut p, start, 30);
        let times: Vec<Instant> = placed.iter().map(|x| x.0).collect();
        assert_eq!(most_in_any_second(&times, 1.0), 10);
        let span = (times[29] - times[0]).as_secs_f64();
        assert!((span - 2.9).abs() < 0.001, "{span}");
    }

    #[test]
    fn the_ramp_rises_linearly_to_the_rate() {
        let s = Schedule::new(10.0, Duration::from_secs(4));
        // 20 calls in the 4 s ramp, then 10 a second.
        assert_eq!(s.due(0), 0.0);
        assert!((s.due(20) - 4.0).abs() < 1e-9);
        assert!((s.due(30) - 5.0).abs() < 1e-9);
        assert!(
            (s.due(5) - 2.0).abs() < 1e-9,
            "a quarter of the ramp's calls by half its time"
        );
    }

    #[test]
    fn a_switch_limit_below_the_rate_holds_each_switch_to_its_own_and_spreads_over_switches() {
        let start = Instant::now();
        // 50 asked, two switches of sessions-per-second 11: 10 each get through in any second of theirs.
        let mut p = Pacer::new(
            start,
            Utc::now(),
            50.0,
            Duration::ZERO,
            1.0,
            &[Some(11), Some(11)],
            1,
        );
        let placed = place_all(&mut p, start, 100);
        for switch in 0..2 {
            let times: Vec<Instant> = placed
                .iter()
                .filter(|x| x.1 == switch)
                .map(|x| x.0)
                .collect();
            assert_eq!(times.len(), 50, "round robin");
            assert!(most_in_any_second(&times, 1.0) <= 10);
        }
    }

    #[test]
    fn a_loopback_call_takes_two_of_the_switchs_sessions_per_second() {
        let start = Instant::now();
        // 20 calls asked against sessions-per-second 30: 29 sessions a second get through, 14 calls of two.
        let mut p = Pacer::new(start, Utc::now(), 20.0, Duration::ZERO, 1.0, &[Some(30)], 2);
        let placed = place_all(&mut p, start, 70);
        let times: Vec<Instant> = placed.iter().map(|x| x.0).collect();
        assert_eq!(most_in_any_second(&times, 1.0), 14);
        let span = (times[69] - times[0]).as_secs_f64();
        assert!(span >= 4.0, "14 calls a second, not 20: {span}");
    }

    #[test]
    fn a_sped_up_switch_counts_its_seconds_on_its_own_clock() {
        let start = Instant::now();
        let mut p = Pacer::new(
            start,
            Utc::now(),
            1000.0,
            Duration::ZERO,
            10.0,
            &[Some(11)],
            1,
        );
        let placed = place_all(&mut p, start, 200);
        let times: Vec<Instant> = placed.iter().map(|x| x.0).collect();
        assert!(
            most_in_any_second(&times, 10.0) <= 10,
            "10 per switch second"
        );
        let span = (times[199] - times[0]).as_secs_f64();
        assert!(span >= 1.8, "about 100 a real second: {span}");
    }

    #[test]
    fn a_timer_that_woke_a_little_late_catches_up_with_the_calls_due() {
        let start = Instant::now();
        let mut p = Pacer::new(start, Utc::now(), 500.0, Duration::ZERO, 1.0, &[None], 1);
        // Woken 30 ms in: the 16 calls due by then (0, 2, …, 30 ms) go at once, the next is due at 32 ms.
        let late = start + Duration::from_millis(30);
        let mut placed = 0;
        while let Decision::Place { switch } = p.decide(late) {
            p.placed(switch, late);
            placed += 1;
        }
        assert_eq!(placed, 16);
        assert_eq!(
            p.decide(late),
            Decision::Wait(start + Duration::from_millis(32))
        );
    }

    #[test]
    fn a_run_that_fell_behind_does_not_catch_up_in_a_burst() {
        let start = Instant::now();
        let mut p = Pacer::new(start, Utc::now(), 10.0, Duration::ZERO, 1.0, &[None], 1);
        place_all(&mut p, start, 5);
        // Every slot was busy for 3 s: the next call goes at once, the ones after it 100 ms apart again.
        let late = start + Duration::from_secs(3);
        assert_eq!(p.decide(late), Decision::Place { switch: 0 });
        p.placed(0, late);
        assert_eq!(
            p.decide(late),
            Decision::Wait(late + Duration::from_millis(100))
        );
    }
}
