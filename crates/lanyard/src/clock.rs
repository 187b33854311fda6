//! Timestamps as PingOne writes them: RFC 3339, UTC, millisecond precision.

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

pub fn format(t: OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    let ms = t.millisecond();
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        ms
    )
}

pub fn now() -> String {
    format(OffsetDateTime::now_utc())
}

pub fn unix() -> i64 {
    OffsetDateTime::now_utc().unix_timestamp()
}

pub fn parse(s: &str) -> Option<OffsetDateTime> {
    OffsetDateTime::parse(s, &Rfc3339).ok()
}

#[cfg(test)]
mod tests {
    #[test]
    fn formats_with_milliseconds() {
        let t = time::macros::datetime!(2026-01-02 03:04:05.006 UTC);
        assert_eq!(super::format(t), "2026-01-02T03:04:05.006Z");
        assert_eq!(super::parse("2026-01-02T03:04:05.006Z"), Some(t));
    }
}
