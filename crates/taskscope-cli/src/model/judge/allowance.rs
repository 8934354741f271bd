//! Allowances: findings a project accepts, named by kind, spawn site and test
//! (`KIND@SITE[#TEST]`), and the screening of occurrences through them.
//!
//! An allowance names its kind because accepting a known leak at a site must not also
//! hide a new stall at that site. The bare `SITE` form of earlier versions still works
//! (every kind at those sites) but draws a warning; `*@SITE` says "every kind" on purpose.

use std::fmt;

use super::finding::Detail;
use super::glob::Glob;
use super::policy::FindingKind;
use super::rules::Occurrence;

/// One accepted kind of finding at some spawn sites, optionally in some tests only.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Allowance {
    /// `None`: every kind.
    kind: Option<FindingKind>,
    /// Written without a kind (the old `--allow SITE` form).
    bare: bool,
    site: Glob,
    site_text: String,
    /// `None`: any test, or no test at all.
    test: Option<(Glob, String)>,
    /// Why the project accepts it (required in `taskscope.toml`).
    pub(crate) reason: Option<String>,
    /// Where it was written, e.g. `--allow` or `taskscope.toml`.
    pub(crate) origin: String,
}

impl Allowance {
    /// Parses `KIND@SITE[#TEST]`, `*@SITE[#TEST]` or the bare `SITE[#TEST]`.
    pub(crate) fn parse(text: &str, origin: &str) -> Result<Self, String> {
        let (kind, rest) = match text.split_once('@') {
            // A kind is a plain word; anything else before an `@` belongs to a path.
            Some((kind, rest))
                if kind == "*" || (!kind.is_empty() && kind.chars().all(is_word)) =>
            {
                (Some(kind), rest)
            }
            _ => (None, text),
        };
        let (site, test) = match rest.split_once('#') {
            Some((site, test)) => (site, Some(test)),
            None => (rest, None),
        };
        let mut allowance = Self::new(kind.unwrap_or("*"), site, test, origin)?;
        allowance.bare = kind.is_none();
        Ok(allowance)
    }

    /// An allowance from its parts: `kind` is a kind's name or `*`.
    pub(crate) fn new(
        kind: &str,
        site: &str,
        test: Option<&str>,
        origin: &str,
    ) -> Result<Self, String> {
        let kind = match kind {
            "*" => None,
            name => Some(
                FindingKind::ALL
                    .into_iter()
                    .find(|k| k.as_str() == name)
                    .ok_or_else(|| {
                        format!(
                            "`{name}` is not a kind of finding; write one of {} or `*`",
                            kind_names()
                        )
                    })?,
            ),
        };
        let test = match test {
            Some(test) => Some((Glob::new(test)?, test.to_owned())),
            None => None,
        };
        Ok(Self {
            kind,
            bare: false,
            site: Glob::new(site)?,
            site_text: site.to_owned(),
            test,
            reason: None,
            origin: origin.to_owned(),
        })
    }

    /// Written without a kind, so it accepts every kind: what the warning is about.
    pub(crate) fn is_bare(&self) -> bool {
        self.bare
    }

    /// Whether it accepts a finding of `kind` at `location` in `test`. A test pattern
    /// matches the test's whole path or any tail of it (`pool_*` matches
    /// `tests::pool_reuse`), and never a finding outside any test.
    pub(crate) fn matches(&self, kind: FindingKind, location: &str, test: Option<&str>) -> bool {
        self.kind.is_none_or(|k| k == kind)
            && self.site.matches_location(location)
            && match (&self.test, test) {
                (None, _) => true,
                (Some(_), None) => false,
                (Some((glob, _)), Some(test)) => {
                    glob.matches(test)
                        || test
                            .match_indices("::")
                            .any(|(at, _)| glob.matches(&test[at + 2..]))
                }
            }
    }
}

impl fmt::Display for Allowance {
    /// The canonical form, `KIND@SITE[#TEST]`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = self.kind.map_or("*", FindingKind::as_str);
        write!(f, "{kind}@{}", self.site_text)?;
        if let Some((_, test)) = &self.test {
            write!(f, "#{test}")?;
        }
        Ok(())
    }
}

fn is_word(c: char) -> bool {
    c.is_ascii_lowercase() || c == '_'
}

/// `stall`, `lost_waker`, ... for error messages.
pub(crate) fn kind_names() -> String {
    FindingKind::ALL
        .iter()
        .map(|k| format!("`{k}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Occurrences after the allowances took what they accept.
pub(crate) struct Screened {
    pub(crate) kept: Vec<Occurrence>,
    /// The ones accepted (whole findings; folded descendants are not counted).
    pub(crate) accepted: Vec<Occurrence>,
    /// Per allowance, whether it accepted anything.
    pub(crate) used: Vec<bool>,
}

/// Drops what `allowances` accept. An accepted leak takes the tasks folded into it along;
/// a leak that is kept loses only the folded tasks an allowance accepts on their own.
pub(crate) fn screen(occurrences: Vec<Occurrence>, allowances: &[Allowance]) -> Screened {
    let mut used = vec![false; allowances.len()];
    let mut accepts = |kind, location: &str, test: Option<&str>| {
        let mut any = false;
        for (index, allowance) in allowances.iter().enumerate() {
            if allowance.matches(kind, location, test) {
                used[index] = true;
                any = true;
            }
        }
        any
    };
    let (mut kept, mut accepted) = (Vec::new(), Vec::new());
    for mut occurrence in occurrences {
        let test = occurrence.test.as_deref();
        if accepts(occurrence.kind, &occurrence.spawn_location, test) {
            accepted.push(occurrence);
            continue;
        }
        if let Detail::AliveAtShutdown { descendants } = &mut occurrence.detail {
            descendants.retain(|d| !accepts(FindingKind::AliveAtShutdown, &d.spawn_location, test));
        }
        kept.push(occurrence);
    }
    Screened {
        kept,
        accepted,
        used,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allowance(text: &str) -> Allowance {
        Allowance::parse(text, "--allow").unwrap()
    }

    #[test]
    fn a_kind_a_site_and_a_test_must_all_match() {
        let leak = allowance("alive_at_shutdown@src/server.rs:*#pool_*");
        let kind = FindingKind::AliveAtShutdown;
        let at = "crates/app/src/server.rs:259:9";
        assert!(leak.matches(kind, at, Some("tests::pool_reuse")));
        assert!(leak.matches(kind, at, Some("pool_reuse")));
        assert!(!leak.matches(FindingKind::Stall, at, Some("pool_reuse")));
        assert!(!leak.matches(kind, "src/db.rs:1:1", Some("pool_reuse")));
        assert!(!leak.matches(kind, at, Some("tests::other")));
        assert!(!leak.matches(kind, at, None), "a test pattern needs a test");
        assert_eq!(leak.to_string(), "alive_at_shutdown@src/server.rs:*#pool_*");
        assert!(!leak.is_bare());
    }

    #[test]
    fn a_bare_site_accepts_every_kind_and_says_so() {
        let bare = allowance("src/metrics.rs:*");
        assert!(bare.is_bare());
        assert!(bare.matches(FindingKind::Stall, "src/metrics.rs:3:4", None));
        assert!(bare.matches(FindingKind::Panic, "src/metrics.rs:3:4", None));
        assert_eq!(bare.to_string(), "*@src/metrics.rs:*");
        let any = allowance("*@src/metrics.rs:*");
        assert!(!any.is_bare());
        assert!(any.matches(FindingKind::Growth, "src/metrics.rs:3:4", None));
    }

    #[test]
    fn an_at_sign_inside_a_path_is_part_of_the_site() {
        let path = allowance("/home/me@corp/src/a.rs:*");
        assert!(path.is_bare());
        assert!(path.matches(FindingKind::Stall, "/home/me@corp/src/a.rs:1:1", None));
    }

    #[test]
    fn unknown_kinds_and_empty_patterns_are_refused_with_the_fix() {
        let err = Allowance::parse("leak@src/a.rs:*", "--allow").unwrap_err();
        assert!(err.contains("`leak` is not a kind") && err.contains("alive_at_shutdown"));
        assert!(Allowance::parse("stall@", "--allow").is_err());
        assert!(Allowance::parse("stall@src/a.rs:*#", "--allow").is_err());
    }
}
