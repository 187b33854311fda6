//! Password policies applied on every password write: which policy governs a user (the
//! population's `passwordPolicy`, else the environment's default policy) and the rules of a
//! policy, evaluated on a cleartext candidate password.
//!
//! A violation is PingOne's `400 INVALID_DATA` with one detail:
//! `{ "code": "INVALID_VALUE", "target": "<field>", "message": "...",
//!    "innerError": { "unsatisfiedRequirements": ["length", "minCharacters", ...] } }`.
//! The requirement names are the policy's own property names (`length`, `minCharacters`,
//! `maxRepeatedCharacters`, `minUniqueCharacters`, `excludesCommonlyUsed`, `excludesProfileData`,
//! `notSimilarToCurrent`, `history`, `minAgeDays`, `minComplexity`, and the four
//! `...SequenceRule`s), as PingOne reports them on `password.reset`/`password.recover`/
//! `user.register` (PingOne docs and flow error samples; the exact message text is ours).
//! `target` is the request field that carried the password: `password.value` on user create and
//! import, `password` on `password.set`/`password.setValue`, `newPassword` on `password.reset`.
//!
//! Pre-hashed passwords (argon2/bcrypt on import and `password.set`) are not evaluated, as in
//! PingOne. The user's password state machine (status, lockout, history) is in
//! [`super::user_password`]; [`set_password`] is the entry point of the user resource.

use serde_json::{Value, json};

use super::common_passwords::COMMON_PASSWORDS;
use crate::error::{ApiError, ApiResult, Detail};
use crate::resources::WriteCtx;
use crate::resources::populations;
use crate::resources::users::PASSWORD_POLICY_KIND;
use crate::store::{Doc, Reader, Tx};

/// Read access for policy lookups, inside a write transaction or outside one.
#[async_trait::async_trait]
pub trait Lookup: Send {
    async fn doc(&mut self, kind: &str, env_id: &str, id: &str) -> ApiResult<Option<Doc>>;
    async fn all(&mut self, kind: &str, env_id: &str) -> ApiResult<Vec<Doc>>;
}

#[async_trait::async_trait]
impl Lookup for Tx {
    async fn doc(&mut self, kind: &str, env_id: &str, id: &str) -> ApiResult<Option<Doc>> {
        self.get(kind, env_id, id).await
    }
    async fn all(&mut self, kind: &str, env_id: &str) -> ApiResult<Vec<Doc>> {
        self.children(kind, env_id, "").await
    }
}

#[async_trait::async_trait]
impl Lookup for Reader<'_> {
    async fn doc(&mut self, kind: &str, env_id: &str, id: &str) -> ApiResult<Option<Doc>> {
        self.get(kind, env_id, id).await
    }
    async fn all(&mut self, kind: &str, env_id: &str) -> ApiResult<Vec<Doc>> {
        self.children(kind, env_id, "").await
    }
}

/// Population and password policy lookups through the sign-on configuration cache (at most
/// `CACHE_TTL` old on other nodes), for the sign-in path.
pub struct Cached<'a>(pub &'a crate::state::App);

#[async_trait::async_trait]
impl Lookup for Cached<'_> {
    async fn doc(&mut self, kind: &str, env_id: &str, id: &str) -> ApiResult<Option<Doc>> {
        self.0.cached_doc(kind, env_id, id).await
    }
    async fn all(&mut self, kind: &str, env_id: &str) -> ApiResult<Vec<Doc>> {
        Ok(self.0.cached_children(kind, env_id, "").await?.to_vec())
    }
}

/// The environment's default password policy.
pub async fn default_policy<L: Lookup + ?Sized>(
    db: &mut L,
    env_id: &str,
) -> ApiResult<Option<Doc>> {
    Ok(db
        .all(PASSWORD_POLICY_KIND, env_id)
        .await?
        .into_iter()
        .find(|p| p.data["default"] == true))
}

/// The policy that governs `user`: its population's `passwordPolicy`, else the environment's
/// default policy; `None` when the environment has no policy at all (no rules apply then).
pub async fn policy_for<L: Lookup + ?Sized>(db: &mut L, user: &Doc) -> ApiResult<Option<Doc>> {
    if let Some(pop_id) = user.data["population"]["id"].as_str()
        && let Some(pop) = db.doc(populations::KIND, &user.env_id, pop_id).await?
        && let Some(pp) = pop.data["passwordPolicy"]["id"].as_str()
        && let Some(policy) = db.doc(PASSWORD_POLICY_KIND, &user.env_id, pp).await?
    {
        return Ok(Some(policy));
    }
    default_policy(db, &user.env_id).await
}

/// A policy's lockout settings: failures before lockout, and the automatic unlock delay
/// (absent: an administrator must unlock).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lockout {
    pub failure_count: i64,
    pub duration_seconds: Option<i64>,
}

pub fn lockout(policy: &Value) -> Option<Lockout> {
    let lo = &policy["lockout"];
    let failure_count = lo["failureCount"].as_i64().filter(|n| *n > 0)?;
    Some(Lockout {
        failure_count,
        duration_seconds: lo["durationSeconds"].as_i64().filter(|n| *n > 0),
    })
}

/// `history`: how many passwords (the current one included) may not be reused, and for how many
/// days a replaced password stays in the history (`None`: no time limit).
pub fn history(policy: &Value) -> Option<(usize, Option<i64>)> {
    let h = &policy["history"];
    let count = h["count"].as_u64().filter(|n| *n > 0)? as usize;
    Some((count, h["retentionDays"].as_i64().filter(|n| *n > 0)))
}

pub fn max_age_days(policy: &Value) -> Option<i64> {
    policy["maxAgeDays"].as_i64().filter(|n| *n > 0)
}

pub fn min_age_days(policy: &Value) -> Option<i64> {
    policy["minAgeDays"].as_i64().filter(|n| *n > 0)
}

/// A cleartext password to evaluate, with what the rules compare it to.
pub struct Candidate<'a> {
    pub password: &'a str,
    /// The user's profile (the stored user data).
    pub profile: &'a Value,
    /// The current password in clear text, known only on a self-service change
    /// (`notSimilarToCurrent` is evaluated only then, as PingOne documents).
    pub current: Option<&'a str>,
}

const ALPHABET: &str = "abcdefghijklmnopqrstuvwxyz";
const DIGITS: &str = "0123456789";
const QWERTY_ROWS: &[&str] = &["qwertyuiop", "asdfghjkl", "zxcvbnm"];
const SHIFTED_NUMBER_ROW: &str = "!@#$%^&*()";
/// Guesses per second of PingOne's "password haystack" model (a massive cracking array).
const HAYSTACK_GUESSES_PER_SECOND: f64 = 1e14;
/// `notSimilarToCurrent`: a Levenshtein distance below this (case-insensitive) is "similar".
const MIN_DISTANCE_FROM_CURRENT: usize = 3;
/// `excludesProfileData`: profile values shorter than this are not compared.
const MIN_PROFILE_TOKEN: usize = 4;

/// The requirements `c` does not satisfy (every synchronous rule; `history` and `minAgeDays`
/// depend on stored state and are checked by the caller). Order follows the policy model.
pub fn unsatisfied(policy: &Value, c: &Candidate<'_>) -> Vec<&'static str> {
    let mut failed = Vec::new();
    let pw = c.password;
    let chars: Vec<char> = pw.chars().collect();
    let lower = pw.to_lowercase();
    let lower_chars: Vec<char> = lower.chars().collect();

    let len = &policy["length"];
    let n = chars.len() as i64;
    if len["min"].as_i64().is_some_and(|min| n < min)
        || len["max"].as_i64().is_some_and(|max| n > max)
    {
        failed.push("length");
    }
    if let Some(classes) = policy["minCharacters"].as_object() {
        let short = classes.iter().any(|(set, min)| {
            let need = min.as_i64().unwrap_or(0);
            need > 0 && (chars.iter().filter(|ch| set.contains(**ch)).count() as i64) < need
        });
        if short {
            failed.push("minCharacters");
        }
    }
    if let Some(max) = policy["maxRepeatedCharacters"].as_i64()
        && longest_repeat(&chars) as i64 > max
    {
        failed.push("maxRepeatedCharacters");
    }
    if let Some(min) = policy["minUniqueCharacters"].as_i64() {
        let mut unique = chars.clone();
        unique.sort_unstable();
        unique.dedup();
        if (unique.len() as i64) < min {
            failed.push("minUniqueCharacters");
        }
    }
    let rules: [(&'static str, &[&str], &[char]); 4] = [
        ("alphabetSequenceRule", &[ALPHABET], &lower_chars),
        ("numberSequenceRule", &[DIGITS], &lower_chars),
        ("qwertySequenceRule", QWERTY_ROWS, &lower_chars),
        (
            "shiftedNumberRowSequenceRule",
            &[SHIFTED_NUMBER_ROW],
            &chars,
        ),
    ];
    for (name, sequences, text) in rules {
        if let Some(max) = policy[name]["maxLength"].as_i64() {
            let longest = sequences
                .iter()
                .map(|s| longest_sequence(text, s))
                .max()
                .unwrap_or(0);
            if longest as i64 > max {
                failed.push(name);
            }
        }
    }
    if let Some(days) = policy["minComplexity"].as_i64().filter(|d| *d > 0)
        && haystack_days_log10(&chars) < (days as f64).log10()
    {
        failed.push("minComplexity");
    }
    if policy["excludesCommonlyUsed"] == true && COMMON_PASSWORDS.contains(&lower.as_str()) {
        failed.push("excludesCommonlyUsed");
    }
    if policy["excludesProfileData"] == true
        && profile_values(c.profile)
            .iter()
            .any(|v| lower.contains(v.as_str()))
    {
        failed.push("excludesProfileData");
    }
    if policy["notSimilarToCurrent"] == true
        && let Some(current) = c.current
        && levenshtein(&lower, &current.to_lowercase()) < MIN_DISTANCE_FROM_CURRENT
    {
        failed.push("notSimilarToCurrent");
    }
    failed
}

/// PingOne's policy violation error (see the module documentation).
pub fn violation(target: &str, failed: &[&str]) -> ApiError {
    ApiError::one(
        Detail::new(
            "INVALID_VALUE",
            Some(target.to_string()),
            format!(
                "The password does not satisfy the password policy ({}).",
                failed.join(", ")
            ),
        )
        .with_inner(json!({ "unsatisfiedRequirements": failed })),
    )
}

/// The longest run of one repeated character.
fn longest_repeat(chars: &[char]) -> usize {
    let mut best = 0;
    let mut run = 0;
    let mut prev = None;
    for &c in chars {
        run = if prev == Some(c) { run + 1 } else { 1 };
        prev = Some(c);
        best = best.max(run);
    }
    best
}

/// The longest run of characters that are neighbours in `sequence`, in one direction
/// (`abcd`, `4321`, `qwer`).
fn longest_sequence(text: &[char], sequence: &str) -> usize {
    let seq: Vec<char> = sequence.chars().collect();
    let pos = |c: char| seq.iter().position(|s| *s == c).map(|p| p as i64);
    let mut best = 0;
    let mut run = 0;
    let mut dir = 0;
    let mut prev: Option<i64> = None;
    for &c in text {
        let p = pos(c);
        match (prev, p) {
            (Some(a), Some(b)) if (b - a).abs() == 1 => {
                if run >= 2 && b - a == dir {
                    run += 1;
                } else {
                    run = 2;
                    dir = b - a;
                }
            }
            (_, Some(_)) => run = 1,
            _ => run = 0,
        }
        prev = p;
        best = best.max(run);
    }
    best
}

/// log10 of the days a brute-force search of the password's space takes (password haystacks:
/// the alphabet is the union of the character classes used, searched at 10^14 guesses/s).
fn haystack_days_log10(chars: &[char]) -> f64 {
    let mut pool = 0u32;
    if chars.iter().any(|c| c.is_ascii_lowercase()) {
        pool += 26;
    }
    if chars.iter().any(|c| c.is_ascii_uppercase()) {
        pool += 26;
    }
    if chars.iter().any(|c| c.is_ascii_digit()) {
        pool += 10;
    }
    if chars.iter().any(|c| !c.is_ascii_alphanumeric()) {
        pool += 33;
    }
    if pool == 0 {
        return f64::NEG_INFINITY;
    }
    chars.len() as f64 * f64::from(pool).log10()
        - HAYSTACK_GUESSES_PER_SECOND.log10()
        - 86400f64.log10()
}

/// Profile values a password may not contain (lower case, at least 4 characters): username,
/// email and its local part, name parts, nickname, phone digits, address parts.
fn profile_values(profile: &Value) -> Vec<String> {
    let mut out = Vec::new();
    let mut push = |s: &str| {
        let s = s.trim().to_lowercase();
        if s.chars().count() >= MIN_PROFILE_TOKEN {
            out.push(s);
        }
    };
    let str_at = |path: &[&str]| {
        path.iter()
            .try_fold(profile, |v, k| v.get(*k))
            .and_then(Value::as_str)
    };
    for path in [
        &["username"][..],
        &["email"],
        &["nickname"],
        &["name", "given"],
        &["name", "middle"],
        &["name", "family"],
        &["name", "formatted"],
        &["address", "streetAddress"],
        &["address", "locality"],
        &["address", "postalCode"],
    ] {
        if let Some(v) = str_at(path) {
            push(v);
            for part in v.split(|c: char| c.is_whitespace() || c == '@' || c == '.') {
                push(part);
            }
        }
    }
    for path in [&["mobilePhone"][..], &["primaryPhone"]] {
        if let Some(v) = str_at(path) {
            let digits: String = v.chars().filter(char::is_ascii_digit).collect();
            push(&digits);
            for group in v.split(|c: char| !c.is_ascii_digit()) {
                push(group);
            }
        }
    }
    out
}

fn levenshtein(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

/// Checks `password` against the user's policy, hashes it, and records it on `user` (the
/// entry point of user create and import). `allow_hash`: an import may carry a pre-hashed
/// password (argon2 or bcrypt), which skips the policy.
pub async fn set_password(
    ctx: &mut WriteCtx<'_>,
    user: &mut Doc,
    password: &str,
    force_change: bool,
    allow_hash: bool,
    target: &str,
) -> ApiResult<()> {
    super::user_password::set(
        ctx.app,
        &mut *ctx.tx,
        user,
        password,
        super::user_password::SetOptions {
            force_change,
            allow_hash,
            bypass_policy: false,
            target,
            current: None,
        },
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn standard() -> Value {
        json!({
            "excludesCommonlyUsed": true, "excludesProfileData": true, "notSimilarToCurrent": true,
            "length": { "min": 8, "max": 255 }, "maxRepeatedCharacters": 2, "minUniqueCharacters": 5,
            "minCharacters": { "ABCDEFGHIJKLMNOPQRSTUVWXYZ": 1, "abcdefghijklmnopqrstuvwxyz": 1, "0123456789": 1, "~!@#$%^&*()-_=+[]{}|;:,.<>/?": 1 },
        })
    }

    fn run(policy: &Value, pw: &str, current: Option<&str>) -> Vec<&'static str> {
        let profile = json!({ "username": "jdoe", "email": "john.smith@example.com", "name": { "given": "Johnny", "family": "Appleseed" }, "mobilePhone": "+1 (512) 867-5309" });
        unsatisfied(
            policy,
            &Candidate {
                password: pw,
                profile: &profile,
                current,
            },
        )
    }

    #[test]
    fn standard_rules() {
        let p = standard();
        assert!(run(&p, "Tr1cky!Horse", None).is_empty());
        assert_eq!(run(&p, "Sh0rt!", None), vec!["length"]);
        assert_eq!(run(&p, "nouppercase1!", None), vec!["minCharacters"]);
        assert_eq!(run(&p, "Baaad1!xyz", None), vec!["maxRepeatedCharacters"]);
        assert_eq!(run(&p, "Ab1!Ab1!Ab1!", None), vec!["minUniqueCharacters"]);
        assert_eq!(run(&p, "P@ssw0rd", None), vec!["excludesCommonlyUsed"]);
        assert_eq!(run(&p, "xAPPLESEEDx1!", None), vec!["excludesProfileData"]);
        assert_eq!(run(&p, "Smith#2024ab", None), vec!["excludesProfileData"]);
        assert_eq!(run(&p, "Zz#5309qx", None), vec!["excludesProfileData"]);
        // "jdoe" is 4 characters: compared. Short tokens are not.
        assert_eq!(run(&p, "Xjdoe#2024ab", None), vec!["excludesProfileData"]);
        assert_eq!(
            run(&p, "Tr1cky!Horse2", Some("tr1cky!horse")),
            vec!["notSimilarToCurrent"]
        );
        assert!(run(&p, "Tr1cky!Horse", Some("Entirely#Diff3rent")).is_empty());
        let mut many = run(&p, "aaa", None);
        many.sort();
        assert_eq!(
            many,
            vec![
                "length",
                "maxRepeatedCharacters",
                "minCharacters",
                "minUniqueCharacters"
            ]
        );
    }

    #[test]
    fn sequences_and_complexity() {
        let p = json!({
            "alphabetSequenceRule": { "maxLength": 3 }, "numberSequenceRule": { "maxLength": 3 },
            "qwertySequenceRule": { "maxLength": 3 }, "shiftedNumberRowSequenceRule": { "maxLength": 3 },
        });
        assert!(run(&p, "abc-123-qwe-!@#", None).is_empty());
        assert_eq!(run(&p, "xxABCDxx", None), vec!["alphabetSequenceRule"]);
        assert_eq!(run(&p, "x9876x", None), vec!["numberSequenceRule"]);
        assert_eq!(run(&p, "zAsdfz", None), vec!["qwertySequenceRule"]);
        assert_eq!(
            run(&p, "z!@#$z", None),
            vec!["shiftedNumberRowSequenceRule"]
        );
        let c = json!({ "minComplexity": 7 });
        assert_eq!(run(&c, "abcdefgh", None), vec!["minComplexity"]);
        assert!(run(&c, "Xy7!kP2#qR9$wZ", None).is_empty());
    }

    #[test]
    fn helpers() {
        assert_eq!(levenshtein("kitten", "sitting"), 3);
        assert_eq!(longest_repeat(&"abbbc".chars().collect::<Vec<_>>()), 3);
        assert_eq!(
            longest_sequence(&"xabcdcba".chars().collect::<Vec<_>>(), ALPHABET),
            4
        );
        assert_eq!(
            lockout(&json!({ "lockout": { "failureCount": 3 } })),
            Some(Lockout {
                failure_count: 3,
                duration_seconds: None
            })
        );
        assert_eq!(
            history(&json!({ "history": { "count": 6, "retentionDays": 365 } })),
            Some((6, Some(365)))
        );
    }
}
