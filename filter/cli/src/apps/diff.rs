//! A unified diff of two texts by lines, with secrets masked: what a command will write, shown before
//! it is written, without putting an AppSecret or AppCode on the terminal.

const CONTEXT: usize = 3;

enum Op {
    Same(usize, usize),
    Del(usize),
    Add(usize),
}

/// The line operations turning `a` into `b`: common head and tail, a longest common subsequence
/// in between (files are small; the middle is what one command changed).
fn ops(a: &[&str], b: &[&str]) -> Vec<Op> {
    let head = a.iter().zip(b).take_while(|(x, y)| x == y).count();
    let tail = a[head..].iter().rev().zip(b[head..].iter().rev()).take_while(|(x, y)| x == y).count();
    let (am, bm) = (&a[head..a.len() - tail], &b[head..b.len() - tail]);
    let (n, m) = (am.len(), bm.len());
    // lcs[i][j]: the longest common subsequence of am[i..] and bm[j..].
    let mut lcs = vec![vec![0u32; m + 1]; n + 1];
    for i in (0..n).rev() {
        for j in (0..m).rev() {
            lcs[i][j] = if am[i] == bm[j] { lcs[i + 1][j + 1] + 1 } else { lcs[i + 1][j].max(lcs[i][j + 1]) };
        }
    }
    let mut out: Vec<Op> = (0..head).map(|i| Op::Same(i, i)).collect();
    let (mut i, mut j) = (0, 0);
    while i < n || j < m {
        if i < n && j < m && am[i] == bm[j] {
            out.push(Op::Same(head + i, head + j));
            i += 1;
            j += 1;
        } else if i < n && (j == m || lcs[i + 1][j] >= lcs[i][j + 1]) {
            out.push(Op::Del(head + i));
            i += 1;
        } else {
            out.push(Op::Add(head + j));
            j += 1;
        }
    }
    out.extend((0..tail).map(|k| Op::Same(head + n + k, head + m + k)));
    out
}

/// Every secret replaced by `********` (longest first, so one secret inside another is covered).
pub(crate) fn mask(line: &str, secrets: &[String]) -> String {
    let mut out = line.to_string();
    for s in secrets.iter().filter(|s| !s.is_empty()) {
        out = out.replace(s.as_str(), "********");
    }
    out
}

/// A unified diff of `a` and `b` (empty when they are the same).
pub(crate) fn unified(name: &str, a: &str, b: &str, secrets: &[String]) -> String {
    let mut secrets: Vec<String> =
        secrets.iter().flat_map(|s| [s.clone(), serde_json::to_string(s).unwrap_or_default().trim_matches('"').to_string()]).collect();
    secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
    let (al, bl): (Vec<&str>, Vec<&str>) = (a.lines().collect(), b.lines().collect());
    let ops = ops(&al, &bl);
    let changed: Vec<usize> = ops.iter().enumerate().filter(|(_, o)| !matches!(o, Op::Same(..))).map(|(k, _)| k).collect();
    if changed.is_empty() {
        return String::new();
    }
    let mut out = format!("--- {name}\n+++ {name} (edited)\n");
    let mut k = 0;
    while k < changed.len() {
        // A hunk: changes closer than twice the context are one.
        let first = changed[k];
        let mut last = first;
        while k + 1 < changed.len() && changed[k + 1] <= last + 2 * CONTEXT + 1 {
            k += 1;
            last = changed[k];
        }
        k += 1;
        let (from, to) = (first.saturating_sub(CONTEXT), (last + CONTEXT + 1).min(ops.len()));
        let (mut a0, mut b0, mut an, mut bn) = (None, None, 0, 0);
        let mut body = String::new();
        for op in &ops[from..to] {
            match *op {
                Op::Same(i, j) => {
                    a0.get_or_insert(i);
                    b0.get_or_insert(j);
                    an += 1;
                    bn += 1;
                    body.push_str(&format!(" {}\n", mask(al[i], &secrets)));
                }
                Op::Del(i) => {
                    a0.get_or_insert(i);
                    an += 1;
                    body.push_str(&format!("-{}\n", mask(al[i], &secrets)));
                }
                Op::Add(j) => {
                    b0.get_or_insert(j);
                    bn += 1;
                    body.push_str(&format!("+{}\n", mask(bl[j], &secrets)));
                }
            }
        }
        out.push_str(&format!("@@ -{},{an} +{},{bn} @@\n{body}", a0.map_or(0, |x| x + 1), b0.map_or(0, |x| x + 1)));
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn hunks_and_masks() {
        let a = "1\n2\n3\n4\n5\n6\n7\n8\n9\n10\n";
        let b = "1\n2\n3\n4\n5\nsix secret-x\n7\n8\n9\n10\n";
        let d = unified("f", a, b, &["secret-x".into()]);
        assert_eq!(d, "--- f\n+++ f (edited)\n@@ -3,7 +3,7 @@\n 3\n 4\n 5\n-6\n+six ********\n 7\n 8\n 9\n");
        assert_eq!(unified("f", a, a, &[]), "");
        let d = unified("f", "a\n", "a\nb\n", &[]);
        assert!(d.ends_with("@@ -1,1 +1,2 @@\n a\n+b\n"), "{d}");
    }
}
