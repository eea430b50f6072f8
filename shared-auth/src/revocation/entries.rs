//! The revocations in force: the union of every list accepted, each entry kept until every
//! token it covers has expired, whatever later lists leave out.

use std::collections::HashMap;

use crate::claims::AccessClaims;

use super::RevocationList;

/// A subject cut-off in force.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Cutoff {
    /// Tokens of the subject issued before this are revoked.
    not_before: i64,
    /// The entry's own expiry.
    exp: i64,
}

/// What is checked on every request: ids to their entry's `exp`.
#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct RevocationSet {
    sessions: HashMap<String, i64>,
    tokens: HashMap<String, i64>,
    subjects: HashMap<String, Cutoff>,
}

impl RevocationSet {
    /// This set with `list` merged in. An entry is never dropped because a newer list leaves
    /// it out (a list replayed from before a logout, or one the server has already pruned),
    /// only once `now` is past its `exp` by more than `margin` (the verifier's leeway: a token
    /// is accepted until its `exp` plus the leeway, so the entry covering it must last as
    /// long). Of two entries for one id the later expiry wins, and of two cut-offs the later
    /// one (it revokes more).
    ///
    /// The incoming entries are all taken, expired or not; they go at the next merge. That
    /// way a list loaded before the margin is known loses nothing.
    pub(super) fn merged(&self, list: &RevocationList, now: i64, margin: i64) -> Self {
        let live = |exp: i64| exp.saturating_add(margin) >= now;
        let mut sessions: HashMap<String, i64> =
            self.sessions.iter().filter(|(_, exp)| live(**exp)).map(|(id, exp)| (id.clone(), *exp)).collect();
        let mut tokens: HashMap<String, i64> =
            self.tokens.iter().filter(|(_, exp)| live(**exp)).map(|(id, exp)| (id.clone(), *exp)).collect();
        let mut subjects: HashMap<String, Cutoff> = self
            .subjects
            .iter()
            .filter(|(_, cut)| live(cut.exp))
            .map(|(id, cut)| (id.clone(), *cut))
            .collect();
        for (target, entries) in [(&mut sessions, &list.sessions), (&mut tokens, &list.tokens)] {
            for entry in entries {
                target
                    .entry(entry.id.clone())
                    .and_modify(|exp| *exp = (*exp).max(entry.exp))
                    .or_insert(entry.exp);
            }
        }
        for cut in &list.subjects {
            let incoming = Cutoff { not_before: cut.not_before, exp: cut.exp };
            subjects
                .entry(cut.id.clone())
                .and_modify(|held| {
                    held.not_before = held.not_before.max(incoming.not_before);
                    held.exp = held.exp.max(incoming.exp);
                })
                .or_insert(incoming);
        }
        Self { sessions, tokens, subjects }
    }

    /// Whether an entry covers the token: its `jti`, its session, or its subject's cut-off.
    pub(super) fn revokes(&self, claims: &AccessClaims) -> bool {
        self.tokens.contains_key(&claims.jti)
            || claims.sid.as_ref().is_some_and(|sid| self.sessions.contains_key(sid))
            || self.subjects.get(&claims.sub).is_some_and(|cutoff| claims.iat < cutoff.not_before)
    }

    /// How many entries are in force.
    pub(super) fn len(&self) -> usize {
        self.sessions.len() + self.tokens.len() + self.subjects.len()
    }
}

#[cfg(test)]
mod tests {
    use super::super::{RevokedEntry, SubjectCutoff};
    use super::*;

    fn list(sessions: &[(&str, i64)], subjects: &[(&str, i64, i64)]) -> RevocationList {
        RevocationList {
            sessions: sessions.iter().map(|(id, exp)| RevokedEntry { id: (*id).into(), exp: *exp }).collect(),
            subjects: subjects
                .iter()
                .map(|(id, not_before, exp)| SubjectCutoff {
                    id: (*id).into(),
                    not_before: *not_before,
                    exp: *exp,
                })
                .collect(),
            ..RevocationList::default()
        }
    }

    fn claims(sid: &str, sub: &str, iat: i64) -> AccessClaims {
        AccessClaims {
            iss: "i".into(),
            sub: sub.into(),
            aud: vec![],
            exp: iat + 900,
            iat,
            nbf: None,
            jti: "j".into(),
            client_id: "c".into(),
            scope: None,
            roles: vec![],
            preferred_username: None,
            sid: Some(sid.into()),
            act: None,
            cnf: None,
        }
    }

    #[test]
    fn an_entry_a_newer_list_leaves_out_stays_until_its_exp_plus_the_margin() {
        let first = RevocationSet::default().merged(&list(&[("s1", 1_000)], &[]), 900, 30);

        let within_margin = first.merged(&list(&[], &[]), 1_030, 30);
        let past_margin = within_margin.merged(&list(&[], &[]), 1_031, 30);

        assert!(within_margin.revokes(&claims("s1", "u", 0)));
        assert!(!past_margin.revokes(&claims("s1", "u", 0)));
        assert_eq!(past_margin.len(), 0);
    }

    #[test]
    fn of_two_entries_the_later_expiry_and_the_later_cutoff_win() {
        let first = RevocationSet::default().merged(&list(&[("s1", 2_000)], &[("u", 500, 2_000)]), 0, 0);

        let merged = first.merged(&list(&[("s1", 1_000)], &[("u", 400, 1_000)]), 1_500, 0);

        assert!(merged.revokes(&claims("s1", "other", 0)), "kept until 2000, not cut to 1000");
        assert!(merged.revokes(&claims("other", "u", 450)), "the cut-off stays at 500");
        assert!(!merged.revokes(&claims("other", "u", 500)));
    }
}
