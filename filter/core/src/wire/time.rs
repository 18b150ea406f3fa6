//! The two date forms the configuration accepts for `authValidTime`: RFC 3339 and the HTTP date (GMT).

/// Days from 1970-01-01 to the given civil date (proleptic Gregorian).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (m as i64 + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146097 + doe - 719468
}

fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        _ => 28,
    }
}

fn num(s: &str) -> Option<u32> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

fn epoch_ms(y: i64, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> Option<i64> {
    if !(1..=12).contains(&mo) || d == 0 || d > days_in_month(y, mo) || h > 23 || mi > 59 || s > 60 {
        return None;
    }
    let secs = days_from_civil(y, mo, d) * 86400 + (h * 3600 + mi * 60 + s) as i64;
    Some(secs * 1000)
}

/// `2027-01-01T00:00:00Z`, `2027-01-01T08:00:00.5+08:00`, also with a space or `t`/`z`.
pub(crate) fn parse_rfc3339(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') || b[13] != b':' || b[16] != b':' {
        return None;
    }
    let base = epoch_ms(
        num(s.get(0..4)?)? as i64,
        num(s.get(5..7)?)?,
        num(s.get(8..10)?)?,
        num(s.get(11..13)?)?,
        num(s.get(14..16)?)?,
        num(s.get(17..19)?)?,
    )?;
    let mut rest = s.get(19..)?;
    let mut frac_ms = 0i64;
    if let Some(f) = rest.strip_prefix('.') {
        let digits = f.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return None;
        }
        let ms = format!("{:0<3}", f.get(..digits.min(3))?);
        frac_ms = num(&ms)? as i64;
        rest = f.get(digits..)?;
    }
    let offset_ms = match rest {
        "Z" | "z" => 0,
        _ => {
            let sign = match rest.as_bytes().first()? {
                b'+' => 1,
                b'-' => -1,
                _ => return None,
            };
            if rest.len() != 6 || rest.as_bytes()[3] != b':' {
                return None;
            }
            let (oh, om) = (num(rest.get(1..3)?)?, num(rest.get(4..6)?)?);
            if oh > 23 || om > 59 {
                return None;
            }
            sign * (oh as i64 * 3600 + om as i64 * 60) * 1000
        }
    };
    Some(base + frac_ms - offset_ms)
}

/// `Tue, 14 Nov 2023 22:16:46 GMT` (RFC 7231 IMF-fixdate).
pub(crate) fn parse_http_date(s: &str) -> Option<i64> {
    let parts: Vec<&str> = s.split(' ').collect();
    let [_, day, mon, year, time, "GMT"] = parts.as_slice() else { return None };
    const MONTHS: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    let mo = MONTHS.iter().position(|m| m == mon)? as u32 + 1;
    let t: Vec<&str> = time.split(':').collect();
    let [h, mi, sec] = t.as_slice() else { return None };
    if year.len() != 4 || h.len() != 2 || mi.len() != 2 || sec.len() != 2 {
        return None;
    }
    epoch_ms(num(year)? as i64, mo, num(day)?, num(h)?, num(mi)?, num(sec)?)
}

/// `2023-11-14T22:16:46Z` for an epoch time in milliseconds (whole seconds).
pub(crate) fn format_rfc3339(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // civil_from_days (Howard Hinnant's algorithm)
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z", rem / 3600, rem % 3600 / 60, rem % 60)
}

/// Either form.
pub(crate) fn parse_instant(s: &str) -> Option<i64> {
    parse_rfc3339(s).or_else(|| parse_http_date(s))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_rfc3339() {
        assert_eq!(format_rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(format_rfc3339(1_700_000_206_999), "2023-11-14T22:16:46Z");
        assert_eq!(format_rfc3339(1_709_164_800_000), "2024-02-29T00:00:00Z");
        for t in [951_782_400_000i64, 4_102_444_800_000, 1_798_761_600_000] {
            assert_eq!(parse_instant(&format_rfc3339(t)), Some(t));
        }
    }

    #[test]
    fn parses_both_forms() {
        assert_eq!(parse_instant("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(parse_instant("2023-11-14T22:16:46Z"), Some(1_700_000_206_000));
        assert_eq!(parse_instant("Tue, 14 Nov 2023 22:16:46 GMT"), Some(1_700_000_206_000));
        assert_eq!(parse_instant("2023-11-15T06:16:46.25+08:00"), Some(1_700_000_206_250));
        assert_eq!(parse_instant("2024-02-29T00:00:00Z"), Some(1_709_164_800_000));
        for bad in [
            "2023-02-29T00:00:00Z",
            "2023-11-14",
            "2023-13-01T00:00:00Z",
            "2023-11-14T22:16:46",
            "yesterday",
            "Tue, 14 Nov 2023 22:16:46 PST",
            "2023-11-14T22:16:46+0800",
        ] {
            assert_eq!(parse_instant(bad), None, "{bad}");
        }
    }
}
