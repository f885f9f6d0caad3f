//! Background jobs: `bgapi` with a client-chosen `Job-UUID`, resolved by its `BACKGROUND_JOB` event.
//!
//! The job is registered in [`Jobs`] before the command is written, so its event can never arrive "too early"
//! (FreeSWITCH may run the job and fire the event before the command's reply is read). A registration that
//! never reaches the wire (the caller's future was dropped, or the command was refused) is removed again by
//! [`JobGuard`], and a lost connection fails every pending job with `ConnectionLost` so no future waits forever.
//!
//! BACKGROUND_JOB is a global event: FreeSWITCH sends it to every connection subscribed to it. So a job failed
//! by a lost connection may still finish, and its event then arrives on the next connection with no job waiting:
//! like any event no job claims, it is passed on to the event channel, where the engine can use it to reconcile.

use std::collections::HashMap;
use std::future::{Future, IntoFuture};
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::oneshot;
use uuid::Uuid;

use super::error::ClientError;
use super::reply::Reply;
use crate::esl::Event;

type JobSender = oneshot::Sender<Result<JobResult, ClientError>>;

/// Pending jobs by `Job-UUID`.
#[derive(Debug, Default)]
pub(crate) struct Jobs {
    map: Mutex<HashMap<Uuid, JobSender>>,
}

impl Jobs {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Uuid, JobSender>> {
        self.map.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Registers a job; fails if that uuid is already pending (a reused Job-UUID would be ambiguous).
    pub(crate) fn register(
        &self,
        uuid: Uuid,
    ) -> Result<oneshot::Receiver<Result<JobResult, ClientError>>, ClientError> {
        let mut map = self.lock();
        if map.contains_key(&uuid) {
            return Err(ClientError::InvalidArgument(format!(
                "Job-UUID {uuid} is already pending"
            )));
        }
        let (tx, rx) = oneshot::channel();
        map.insert(uuid, tx);
        Ok(rx)
    }

    pub(crate) fn forget(&self, uuid: &Uuid) {
        self.lock().remove(uuid);
    }

    /// Hands a BACKGROUND_JOB event to its job. Returns the event when no job is waiting for it (not ours, or its
    /// `BackgroundJob` was dropped), so the caller can pass it on instead of losing it.
    pub(crate) fn resolve(&self, event: Event) -> Option<Event> {
        let Some(uuid) = event
            .job_uuid()
            .and_then(|u| Uuid::parse_str(u.trim()).ok())
        else {
            return Some(event);
        };
        let Some(tx) = self.lock().remove(&uuid) else {
            return Some(event);
        };
        tracing::debug!(job_uuid = %uuid, "BACKGROUND_JOB resolved");
        match tx.send(Ok(JobResult { event })) {
            Ok(()) => None,
            Err(Ok(result)) => Some(result.event),
            Err(Err(_)) => None,
        }
    }

    /// Fails every pending job (the connection carrying them is gone).
    pub(crate) fn fail_all(&self, error: &ClientError) -> usize {
        let drained: Vec<JobSender> = self.lock().drain().map(|(_, tx)| tx).collect();
        let n = drained.len();
        for tx in drained {
            let _ = tx.send(Err(error.clone()));
        }
        n
    }

    pub(crate) fn len(&self) -> usize {
        self.lock().len()
    }
}

/// Removes a job registration unless disarmed (the command was written and accepted).
pub(crate) struct JobGuard {
    pub(crate) shared: Arc<super::conn::Shared>,
    pub(crate) uuid: Uuid,
    pub(crate) armed: bool,
}

impl Drop for JobGuard {
    fn drop(&mut self) {
        if self.armed {
            self.shared.jobs.forget(&self.uuid);
        }
    }
}

/// The outcome of a background job: its `BACKGROUND_JOB` event.
#[derive(Debug, Clone)]
pub struct JobResult {
    event: Event,
}

/// A job body read the FreeSWITCH way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobOutcome<'a> {
    /// `+OK <value>` (for originate, the channel uuid).
    Ok(&'a str),
    /// `-ERR <cause>` (for originate, the hangup cause, e.g. `NO_ANSWER`).
    Err(&'a str),
    /// Anything else (e.g. `-USAGE: …`, or a command whose output has no status prefix).
    Other(&'a str),
}

impl JobResult {
    /// The BACKGROUND_JOB event (Job-UUID, Job-Command, Job-Command-Arg, …).
    pub fn event(&self) -> &Event {
        &self.event
    }

    /// The job's output (the event body), empty when there is none.
    pub fn body(&self) -> &[u8] {
        self.event.body().unwrap_or_default()
    }

    /// The output as text, trimmed of surrounding whitespace (event-xml bodies keep the pretty-printer's
    /// indentation).
    pub fn text(&self) -> std::borrow::Cow<'_, str> {
        match self.event.body_text() {
            Some(std::borrow::Cow::Borrowed(s)) => std::borrow::Cow::Borrowed(s.trim()),
            Some(std::borrow::Cow::Owned(s)) => std::borrow::Cow::Owned(s.trim().to_owned()),
            None => std::borrow::Cow::Borrowed(""),
        }
    }

    /// `+OK …` / `-ERR …` / other, on the trimmed text.
    pub fn outcome(&self) -> JobOutcome<'_> {
        let text = match self.event.body() {
            Some(b) => std::str::from_utf8(b).unwrap_or("").trim(),
            None => "",
        };
        if let Some(rest) = text.strip_prefix("+OK") {
            JobOutcome::Ok(rest.trim_start())
        } else if let Some(rest) = text.strip_prefix("-ERR") {
            JobOutcome::Err(rest.trim_start())
        } else {
            JobOutcome::Other(text)
        }
    }

    /// Whether the output starts with `+OK`.
    pub fn is_ok(&self) -> bool {
        matches!(self.outcome(), JobOutcome::Ok(_))
    }
}

/// An accepted `bgapi`: the command/reply, and the future of its result.
#[derive(Debug)]
pub struct BackgroundJob {
    pub(crate) job_uuid: Uuid,
    pub(crate) reply: Reply,
    pub(crate) rx: oneshot::Receiver<Result<JobResult, ClientError>>,
}

impl BackgroundJob {
    /// The Job-UUID sent with the command.
    pub fn job_uuid(&self) -> Uuid {
        self.job_uuid
    }

    /// FreeSWITCH's acceptance (`+OK Job-UUID: …`).
    pub fn reply(&self) -> &Reply {
        &self.reply
    }

    /// Waits for the BACKGROUND_JOB event. Fails with `ConnectionLost` if the connection dies first (the job may
    /// still run on the switch; a late BACKGROUND_JOB then comes on the event channel).
    pub async fn result(self) -> Result<JobResult, ClientError> {
        self.rx.await.unwrap_or_else(|_| {
            Err(ClientError::ConnectionLost {
                reason: "the ESL client stopped before the job finished".into(),
            })
        })
    }
}

impl IntoFuture for BackgroundJob {
    type Output = Result<JobResult, ClientError>;
    type IntoFuture = Pin<Box<dyn Future<Output = Self::Output> + Send>>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(self.result())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job_event(uuid: &str, body: &[u8]) -> Event {
        Event::from_pairs(
            [("Event-Name", "BACKGROUND_JOB"), ("Job-UUID", uuid)],
            Some(body),
        )
    }

    #[tokio::test]
    async fn event_resolves_its_job_and_unknown_jobs_are_handed_back() {
        let jobs = Jobs::default();
        let id = Uuid::new_v4();
        let rx = jobs.register(id).unwrap();
        assert!(jobs.register(id).is_err(), "duplicate Job-UUID refused");
        assert!(
            jobs.resolve(job_event(&Uuid::new_v4().to_string(), b"+OK x\n"))
                .is_some()
        );
        assert!(
            jobs.resolve(job_event(
                &id.to_string().to_uppercase(),
                b"-ERR NO_ANSWER\n"
            ))
            .is_none()
        );
        let result = rx.await.unwrap().unwrap();
        assert_eq!(result.outcome(), JobOutcome::Err("NO_ANSWER"));
        assert_eq!(jobs.len(), 0);
    }

    #[tokio::test]
    async fn dropped_waiter_hands_the_event_back() {
        let jobs = Jobs::default();
        let id = Uuid::new_v4();
        drop(jobs.register(id).unwrap());
        assert!(jobs.resolve(job_event(&id.to_string(), b"+OK\n")).is_some());
    }

    #[tokio::test]
    async fn fail_all_reaches_every_waiter() {
        let jobs = Jobs::default();
        let rxs: Vec<_> = (0..3)
            .map(|_| jobs.register(Uuid::new_v4()).unwrap())
            .collect();
        let err = ClientError::ConnectionLost {
            reason: "test".into(),
        };
        assert_eq!(jobs.fail_all(&err), 3);
        for rx in rxs {
            assert_eq!(rx.await.unwrap().unwrap_err(), err);
        }
    }

    #[test]
    fn outcome_reads_ok_err_and_xml_indentation() {
        let r = |b: &[u8]| JobResult {
            event: job_event("x", b),
        };
        assert_eq!(r(b"+OK 1234\n").outcome(), JobOutcome::Ok("1234"));
        assert_eq!(
            r(b"-ERR USER_BUSY\n  ").outcome(),
            JobOutcome::Err("USER_BUSY")
        );
        assert_eq!(
            r(b"-USAGE: <call url>\n").outcome(),
            JobOutcome::Other("-USAGE: <call url>")
        );
        assert_eq!(r(b"UP 0 years\n").text(), "UP 0 years");
    }
}
