//! Times on the command line: an RFC 3339 instant as written, or a span from now (`24h`, `7d`,
//! `1h30m`), written as an RFC 3339 instant in UTC, the form the configuration reads.

use std::time::{SystemTime, UNIX_EPOCH};

pub(crate) fn now_s() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64)
}

/// `24h`, `30m`, `7d`, `90s`, `2w`, or a sum of them (`1h30m`), in seconds.
pub(crate) fn span(text: &str) -> Option<i64> {
    let (mut total, mut digits) = (0i64, String::new());
    for c in text.trim().chars() {
        if c.is_ascii_digit() {
            digits.push(c);
            continue;
        }
        let unit = match c {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86_400,
            'w' => 604_800,
            _ => return None,
        };
        total = total.checked_add(digits.parse::<i64>().ok()?.checked_mul(unit)?)?;
        digits.clear();
    }
    (digits.is_empty() && total > 0).then_some(total)
}

/// A time given on the command line: a span from now, or an RFC 3339 instant (kept as written).
pub(crate) fn instant(text: &str) -> Result<String, String> {
    if let Some(s) = span(text) {
        return Ok(rfc3339(now_s() + s));
    }
    if parse_rfc3339(text).is_some() {
        return Ok(text.to_string());
    }
    Err(format!("{text:?} is neither a span like 24h, 30m, 7d nor an RFC 3339 time like 2027-01-01T00:00:00Z"))
}

/// Seconds since the epoch as `YYYY-MM-DDTHH:MM:SSZ`.
pub(crate) fn rfc3339(t: i64) -> String {
    let (days, secs) = (t.div_euclid(86_400), t.rem_euclid(86_400));
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z", secs / 3600, secs % 3600 / 60, secs % 60)
}

fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// `YYYY-MM-DDTHH:MM:SS[.frac](Z|±HH:MM)` in seconds since the epoch.
pub(crate) fn parse_rfc3339(t: &str) -> Option<i64> {
    let b = t.as_bytes();
    let num = |r: std::ops::Range<usize>| t.get(r).filter(|s| s.bytes().all(|c| c.is_ascii_digit())).and_then(|s| s.parse::<i64>().ok());
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') || b[13] != b':' || b[16] != b':' {
        return None;
    }
    let (y, mo, d, h, mi, s) = (num(0..4)?, num(5..7)?, num(8..10)?, num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || s > 60 {
        return None;
    }
    let mut rest = t.get(19..)?;
    if let Some(frac) = rest.strip_prefix('.') {
        let n = frac.bytes().take_while(u8::is_ascii_digit).count();
        if n == 0 {
            return None;
        }
        rest = frac.get(n..)?;
    }
    let offset = match rest {
        "Z" | "z" => 0,
        o if o.len() == 6 && (o.starts_with('+') || o.starts_with('-')) && o.as_bytes()[3] == b':' => {
            let v = num(t.len() - 5..t.len() - 3)? * 3600 + num(t.len() - 2..t.len())? * 60;
            if o.starts_with('-') {
                -v
            } else {
                v
            }
        }
        _ => return None,
    };
    Some(days_from_civil(y, mo, d) * 86_400 + h * 3600 + mi * 60 + s - offset)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn spans_and_instants() {
        assert_eq!(span("24h"), Some(86_400));
        assert_eq!(span("1h30m"), Some(5400));
        assert_eq!(span("7d"), Some(604_800));
        assert_eq!(span("h"), None);
        assert_eq!(span("5"), None);
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_700_000_206), "2023-11-14T22:16:46Z");
        assert_eq!(parse_rfc3339("2023-11-14T22:16:46Z"), Some(1_700_000_206));
        assert_eq!(parse_rfc3339("2023-11-15T00:16:46.5+02:00"), Some(1_700_000_206));
        assert_eq!(parse_rfc3339("2023-11-14"), None);
        assert!(instant("tomorrow").is_err());
        assert_eq!(instant("2027-01-01T00:00:00Z").unwrap(), "2027-01-01T00:00:00Z");
        let t = parse_rfc3339(&instant("24h").unwrap()).unwrap();
        assert!((t - now_s() - 86_400).abs() <= 2);
    }
}
