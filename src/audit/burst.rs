//! Loss bursts: unexplained losses that cluster in time are rarely
//! independent. On 2017-05-09, every lost recording belonged to a call
//! that ended within 43 minutes. When at least `min_losses` unexplained
//! losses end within any `window`, the audit proposes a draft incident
//! covering them, which an admin can confirm into the registry.

use std::time::Duration;

use jiff::{Timestamp, ToSpan};
use serde::{Deserialize, Serialize};

use crate::incidents::{IncidentSpec, IncidentStatus, MatchOn, Outcome};
use crate::sid::{AccountSid, RecordingSid};

/// When losses count as a burst.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BurstRule {
    pub min_losses: usize,
    pub window: Duration,
}

impl Default for BurstRule {
    fn default() -> Self {
        Self {
            min_losses: 5,
            window: Duration::from_secs(30 * 60),
        }
    }
}

/// A cluster of unexplained losses, and the incident it suggests.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Burst {
    /// End time of the first and the last call of the cluster.
    pub first_end: Timestamp,
    pub last_end: Timestamp,
    pub losses: usize,
    pub accounts: Vec<AccountSid>,
    /// Up to ten of the recordings, as examples.
    pub examples: Vec<RecordingSid>,
    /// The draft incident: whole minutes around the cluster, UTC,
    /// investigating (so nothing is declared lost until a person says so).
    pub draft: IncidentSpec,
}

/// Bursts among `(end time, account, sid)` of unexplained losses, in time
/// order. Every loss that lies in some window of `rule.window` holding at
/// least `rule.min_losses` losses belongs to a burst; overlapping dense
/// windows join into one.
pub fn find_bursts(
    mut losses: Vec<(Timestamp, AccountSid, RecordingSid)>,
    rule: BurstRule,
) -> Vec<Burst> {
    if rule.min_losses == 0 || losses.len() < rule.min_losses {
        return vec![];
    }
    losses.sort_by(|a, b| a.0.cmp(&b.0).then_with(|| a.2.cmp(&b.2)));
    let window = jiff::SignedDuration::try_from(rule.window).unwrap_or(jiff::SignedDuration::MAX);
    // Index ranges [i, j] of dense windows, joined where they overlap.
    let mut ranges: Vec<(usize, usize)> = Vec::new();
    let mut j = 0;
    for i in 0..losses.len() {
        j = j.max(i);
        while j + 1 < losses.len() && losses[j + 1].0.duration_since(losses[i].0) <= window {
            j += 1;
        }
        if j - i + 1 >= rule.min_losses {
            match ranges.last_mut() {
                Some(last) if last.1 >= i => last.1 = last.1.max(j),
                _ => ranges.push((i, j)),
            }
        }
    }
    ranges
        .into_iter()
        .map(|(i, j)| burst(&losses[i..=j]))
        .collect()
}

fn burst(cluster: &[(Timestamp, AccountSid, RecordingSid)]) -> Burst {
    let first_end = cluster[0].0;
    let last_end = cluster[cluster.len() - 1].0;
    let mut accounts: Vec<AccountSid> = cluster.iter().map(|(_, a, _)| a.clone()).collect();
    accounts.sort();
    accounts.dedup();
    let examples = cluster.iter().take(10).map(|(_, _, s)| s.clone()).collect();
    Burst {
        first_end,
        last_end,
        losses: cluster.len(),
        draft: draft(first_end, last_end, cluster.len(), &accounts),
        accounts,
        examples,
    }
}

/// The minute `t` falls in, and the minute after `t` (unless `t` is whole).
fn minutes(first: Timestamp, last: Timestamp) -> (Timestamp, Timestamp) {
    let floor =
        |t: Timestamp| Timestamp::from_second(t.as_second().div_euclid(60) * 60).unwrap_or(t);
    let start = floor(first);
    let end = if floor(last) == last {
        last
    } else {
        floor(last).checked_add(1.minute()).unwrap_or(last)
    };
    (start, end)
}

fn draft(
    first: Timestamp,
    last: Timestamp,
    losses: usize,
    accounts: &[AccountSid],
) -> IncidentSpec {
    let (start, end) = minutes(first, last);
    let civil = |t: Timestamp| t.strftime("%Y-%m-%dT%H:%M:%S").to_string();
    let shown = |t: Timestamp| t.strftime("%Y-%m-%d %H:%M UTC").to_string();
    IncidentSpec {
        id: format!("audit-{}", start.strftime("%Y%m%d-%H%M")),
        title: format!(
            "Recordings missing from storage for calls ending {} to {}",
            shown(start),
            end.strftime("%H:%M UTC")
        ),
        service: None,
        status: IncidentStatus::Investigating,
        outcome: Outcome::PartiallyLost,
        time_zone: "UTC".into(),
        starts: civil(start),
        ends: civil(end),
        match_on: MatchOn::End,
        summary: format!(
            "The loss audit found {losses} recordings of calls that ended between {} and {} \
             missing from storage, with no known cause. The cause is being investigated.",
            shown(start),
            shown(end)
        ),
        impact: "Recordings of calls that ended in this window may be missing.".into(),
        notes: vec![],
        what_to_do: "Nothing is needed from you now; this page will say more once the cause \
                     is known."
            .into(),
        communicated: None,
        corrective_actions: vec![],
        accounts: accounts.to_vec(),
        recordings: vec![],
        links: vec![],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn loss(t: &str, n: u32) -> (Timestamp, AccountSid, RecordingSid) {
        (
            t.parse().unwrap(),
            "AC00000000000000000000000000000001".parse().unwrap(),
            format!("RE{n:032x}").parse().unwrap(),
        )
    }

    #[test]
    fn a_dense_cluster_is_one_burst_with_whole_minutes_around_it() {
        let first: Timestamp = "2017-05-09T17:48:30Z".parse().unwrap();
        let mut losses: Vec<_> = (0..8)
            .map(|i| {
                let t = first + jiff::SignedDuration::from_mins(5 * i64::from(i));
                loss(&t.to_string(), i)
            })
            .collect();
        // Scattered losses far apart are not a burst.
        losses.push(loss("2017-05-08T03:00:00Z", 100));
        losses.push(loss("2017-05-10T09:00:00Z", 101));
        let bursts = find_bursts(losses, BurstRule::default());
        assert_eq!(bursts.len(), 1);
        let b = &bursts[0];
        assert_eq!(b.losses, 8);
        assert_eq!(b.first_end.to_string(), "2017-05-09T17:48:30Z");
        assert_eq!(b.last_end.to_string(), "2017-05-09T18:23:30Z");
        assert_eq!(b.draft.starts, "2017-05-09T17:48:00");
        assert_eq!(b.draft.ends, "2017-05-09T18:24:00");
        assert_eq!(b.draft.id, "audit-20170509-1748");
        assert_eq!(b.draft.status, IncidentStatus::Investigating);
        assert_eq!(b.accounts.len(), 1);
        // The draft is a valid incident that covers every loss.
        let incident = b
            .draft
            .clone()
            .validate(crate::incidents::Origin::Admin)
            .unwrap();
        assert!(incident.start <= b.first_end && b.last_end <= incident.end);
    }

    #[test]
    fn sparse_losses_and_edge_cases_make_no_burst() {
        let rule = BurstRule {
            min_losses: 3,
            window: Duration::from_secs(600),
        };
        let sparse: Vec<_> = (0..10)
            .map(|i| loss(&format!("2017-05-09T{:02}:00:00Z", i), i))
            .collect();
        assert!(find_bursts(sparse, rule).is_empty());
        assert!(find_bursts(vec![], rule).is_empty());
        let zero = BurstRule {
            min_losses: 0,
            ..rule
        };
        assert!(find_bursts(vec![loss("2017-05-09T00:00:00Z", 1)], zero).is_empty());
    }

    #[test]
    fn two_clusters_are_two_bursts_and_a_bridge_joins_them() {
        let rule = BurstRule {
            min_losses: 3,
            window: Duration::from_secs(600),
        };
        let at = |m: u32, n| loss(&format!("2017-05-09T10:{m:02}:00Z"), n);
        let two = vec![
            at(0, 1),
            at(1, 2),
            at(2, 3),
            at(40, 4),
            at(41, 5),
            at(42, 6),
        ];
        assert_eq!(find_bursts(two.clone(), rule).len(), 2);
        // Exactly at the window's length still counts.
        let edge = vec![at(0, 1), at(5, 2), at(10, 3)];
        assert_eq!(find_bursts(edge, rule).len(), 1);
        let mut bridged = two;
        bridged.extend([
            at(10, 7),
            at(12, 8),
            at(20, 9),
            at(22, 10),
            at(30, 11),
            at(32, 12),
        ]);
        let b = find_bursts(bridged, rule);
        assert_eq!(b.len(), 1);
        assert_eq!(b[0].losses, 12);
    }
}
