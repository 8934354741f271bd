//! `--allow` patterns over spawn locations: `*` matches any run of characters (including
//! `/` and `:`), `?` any one character, everything else itself.
//!
//! Deliberately tiny: a spawn location is one short string, not a file tree, so a
//! shell-style matcher is all `--allow 'src/metrics.rs:*'` needs.

/// A parsed pattern.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Glob {
    pattern: Vec<char>,
}

impl Glob {
    pub(crate) fn new(pattern: &str) -> Result<Self, String> {
        if pattern.trim().is_empty() {
            return Err(
                "an empty --allow pattern would match nothing; write e.g. 'src/metrics.rs:*'"
                    .into(),
            );
        }
        Ok(Self {
            pattern: pattern.chars().collect(),
        })
    }

    /// Whether the whole `text` matches.
    pub(crate) fn matches(&self, text: &str) -> bool {
        let text: Vec<char> = text.chars().collect();
        // Classic two-pointer wildcard match with backtracking to the last `*`: linear in
        // practice, never exponential.
        let (mut p, mut t) = (0, 0);
        let mut star: Option<(usize, usize)> = None;
        while t < text.len() {
            match self.pattern.get(p) {
                Some('*') => {
                    star = Some((p, t));
                    p += 1;
                }
                Some(&c) if c == '?' || c == text[t] => {
                    p += 1;
                    t += 1;
                }
                _ => match star {
                    Some((star_p, star_t)) => {
                        p = star_p + 1;
                        t = star_t + 1;
                        star = Some((star_p, star_t + 1));
                    }
                    None => return false,
                },
            }
        }
        self.pattern[p..].iter().all(|&c| c == '*')
    }

    /// Whether a spawn location matches, either whole or from any path component on:
    /// locations of workspace members carry the member's directory
    /// (`crates/app/src/metrics.rs:12:5`), and users write patterns as they see paths
    /// in their own crate (`src/metrics.rs:*`).
    pub(crate) fn matches_location(&self, location: &str) -> bool {
        self.matches(location)
            || location
                .match_indices('/')
                .any(|(slash, _)| self.matches(&location[slash + 1..]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn glob(pattern: &str) -> Glob {
        Glob::new(pattern).unwrap()
    }

    #[test]
    fn star_and_question_mark_match_like_a_shell() {
        assert!(glob("src/metrics.rs:*").matches("src/metrics.rs:12:5"));
        assert!(glob("*.rs:1?:*").matches("a/b.rs:12:5"));
        assert!(!glob("src/metrics.rs:*").matches("src/metrics.rs"));
        assert!(glob("*").matches(""));
        assert!(!glob("a*b").matches("acbd"));
        assert!(glob("a*b*c").matches("aXbYbZc"));
    }

    #[test]
    fn a_location_matches_from_any_path_component() {
        let allow = glob("src/metrics.rs:*");
        assert!(allow.matches_location("crates/app/src/metrics.rs:12:5"));
        assert!(!allow.matches_location("crates/app/src/metrics_rs:12:5"));
        assert!(!allow.matches_location("crates/app/mysrc/metrics.rs:12:5"));
    }

    #[test]
    fn an_empty_pattern_is_refused() {
        assert!(Glob::new(" ").is_err());
    }
}
