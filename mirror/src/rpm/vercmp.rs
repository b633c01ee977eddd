//! RPM version ordering and dependency ranges, as rpm and libsolv (dnf) do them.
//!
//! [`rpmvercmp`] is rpm's `rpmio/rpmvercmp.c` segment compare (with `~` pre-release and `^` post-release
//! separators); [`Evr`] orders epoch numerically (a missing epoch is 0), then version, then release;
//! [`overlaps`] is libsolv's `pool_intersect_evrs` (rpm's `rpmdsCompare` answers the same): a provide
//! `kubernetes-cni = 1.4.0-1` satisfies `kubernetes-cni < 1.5.0` because their ranges overlap, a release
//! missing on one side is not compared, and `X < 1:0` is satisfied by `X-2.10` (epoch 0).

use std::cmp::Ordering;
use std::fmt;

use super::Error;

/// rpm's `rpmvercmp`: compares two version (or release) strings segment by segment.
///
/// Separators are any bytes that are not ASCII alphanumerics, `~` or `^`; a digit run is newer than a letter
/// run; digit runs compare numerically (leading zeros dropped); `~` sorts before anything, even the end of
/// the string; `^` sorts after the end of the string but before anything else.
pub fn rpmvercmp(a: &str, b: &str) -> Ordering {
    if a == b {
        return Ordering::Equal;
    }
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let (mut i, mut j) = (0, 0);
    let sep = |c: u8| !c.is_ascii_alphanumeric() && c != b'~' && c != b'^';
    while i < a.len() || j < b.len() {
        while i < a.len() && sep(a[i]) {
            i += 1;
        }
        while j < b.len() && sep(b[j]) {
            j += 1;
        }
        let (ca, cb) = (a.get(i).copied(), b.get(j).copied());
        // Tilde sorts before everything else, the end of the string included.
        if ca == Some(b'~') || cb == Some(b'~') {
            if ca != Some(b'~') {
                return Ordering::Greater;
            }
            if cb != Some(b'~') {
                return Ordering::Less;
            }
            i += 1;
            j += 1;
            continue;
        }
        // Caret is like tilde, except that the end of the string (the base version) sorts before it.
        if ca == Some(b'^') || cb == Some(b'^') {
            if ca.is_none() {
                return Ordering::Less;
            }
            if cb.is_none() {
                return Ordering::Greater;
            }
            if ca != Some(b'^') {
                return Ordering::Greater;
            }
            if cb != Some(b'^') {
                return Ordering::Less;
            }
            i += 1;
            j += 1;
            continue;
        }
        if ca.is_none() || cb.is_none() {
            break;
        }
        // Take the maximal run of digits, or of letters, from both.
        let numeric = a[i].is_ascii_digit();
        let class = |c: &u8| {
            if numeric {
                c.is_ascii_digit()
            } else {
                c.is_ascii_alphabetic()
            }
        };
        let ea = i + a[i..].iter().take_while(|c| class(c)).count();
        let eb = j + b[j..].iter().take_while(|c| class(c)).count();
        let (mut sa, mut sb) = (&a[i..ea], &b[j..eb]);
        // A digit run against a letter run (an empty run of digits): the digits are newer.
        if sb.is_empty() {
            return if numeric {
                Ordering::Greater
            } else {
                Ordering::Less
            };
        }
        if numeric {
            while sa.first() == Some(&b'0') {
                sa = &sa[1..];
            }
            while sb.first() == Some(&b'0') {
                sb = &sb[1..];
            }
            match sa.len().cmp(&sb.len()) {
                Ordering::Equal => {}
                other => return other,
            }
        }
        match sa.cmp(sb) {
            Ordering::Equal => {}
            other => return other,
        }
        i = ea;
        j = eb;
    }
    match (i >= a.len(), j >= b.len()) {
        (true, true) => Ordering::Equal,
        (true, false) => Ordering::Less,
        _ => Ordering::Greater,
    }
}

/// Epoch, version and release. A missing epoch is 0; a missing release matches any release.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct Evr {
    /// The epoch (0 when the metadata leaves it out).
    pub epoch: u64,
    /// The version.
    pub version: String,
    /// The release; `None` for a requirement that does not name one (`kubernetes-cni >= 1.4.0`).
    pub release: Option<String>,
}

impl Evr {
    /// Builds an EVR from metadata attributes; an empty or missing epoch is 0.
    pub fn new(epoch: Option<&str>, version: &str, release: Option<&str>) -> Result<Evr, Error> {
        let epoch = match epoch.map(str::trim) {
            None | Some("") => 0,
            Some(e) => e.parse().map_err(|_| Error::Epoch {
                epoch: e.to_string(),
            })?,
        };
        Ok(Evr {
            epoch,
            version: version.to_string(),
            release: release.filter(|r| !r.is_empty()).map(str::to_string),
        })
    }

    /// Parses `[epoch:]version[-release]`.
    pub fn parse(s: &str) -> Result<Evr, Error> {
        let (epoch, rest) = match s.split_once(':') {
            Some((e, rest)) => (Some(e), rest),
            None => (None, s),
        };
        let (version, release) = match rest.rsplit_once('-') {
            Some((v, r)) => (v, Some(r)),
            None => (rest, None),
        };
        if version.is_empty() {
            return Err(Error::NoVersion { evr: s.to_string() });
        }
        Evr::new(epoch, version, release)
    }

    /// Orders two EVRs for "which is newer": epoch, then version, then release (a missing release sorts
    /// first, which only matters for EVRs that are not package EVRs).
    pub fn newer_cmp(&self, other: &Evr) -> Ordering {
        self.epoch
            .cmp(&other.epoch)
            .then_with(|| rpmvercmp(&self.version, &other.version))
            .then_with(|| match (&self.release, &other.release) {
                (Some(a), Some(b)) => rpmvercmp(a, b),
                (a, b) => a.is_some().cmp(&b.is_some()),
            })
    }

    /// Compares for dependency matching, as libsolv (dnf) does it for rpm pools: `pool_evrcmp_str` in
    /// `EVRCMP_MATCH` mode (libsolv `src/evr.c`), which is also rpm's `rpmverOverlap` order.
    ///
    /// - Epoch: libsolv's metadata reader (`makeevr_parts` in `ext/repo_rpmmd.c`) drops a trivial epoch
    ///   (`epoch="0"` or `epoch=""`), so a package or requirement written with epoch 0 and one written
    ///   without an epoch are the same EVR string. When both sides then carry an epoch they are compared;
    ///   when only one does, rpm pools (no `promoteepoch`) let a non-zero epoch decide: that side is
    ///   greater. Both come down to comparing epochs with a missing epoch as 0, which is what [`Evr`]
    ///   stores: `X-2.10` satisfies `X < 1:0`, and `Y-3.0.0` does not satisfy `Y >= 2:2.74`.
    /// - Version: compared unless one side's is empty.
    /// - Release: compared only when both sides have one (an empty release is none).
    pub fn match_cmp(&self, other: &Evr) -> Ordering {
        self.epoch
            .cmp(&other.epoch)
            .then_with(|| {
                if self.version.is_empty() || other.version.is_empty() {
                    Ordering::Equal
                } else {
                    rpmvercmp(&self.version, &other.version)
                }
            })
            .then_with(|| match (&self.release, &other.release) {
                (Some(a), Some(b)) => rpmvercmp(a, b),
                _ => Ordering::Equal,
            })
    }
}

impl Evr {
    /// libsolv's `pool_evrcmp_str(.., EVRCMP_MATCH_RELEASE)` (`src/evr.c`), the compare its dependency
    /// matching uses for rpm pools: epoch (a missing one is 0, see [`Evr::match_cmp`]), then version, then
    /// release; when only one side has a release the answer is -2 (`self` has none) or 2 (`other` has
    /// none), which `overlaps` turns into rpm's "the side without a release matches if it allows equality".
    pub fn dep_cmp(&self, other: &Evr) -> i32 {
        let o = self
            .epoch
            .cmp(&other.epoch)
            .then_with(|| rpmvercmp(&self.version, &other.version));
        if o != Ordering::Equal {
            return o as i32;
        }
        match (&self.release, &other.release) {
            (Some(a), Some(b)) => rpmvercmp(a, b) as i32,
            (None, Some(_)) => -2,
            (Some(_), None) => 2,
            (None, None) => 0,
        }
    }
}

impl fmt::Display for Evr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.epoch != 0 {
            write!(f, "{}:", self.epoch)?;
        }
        f.write_str(&self.version)?;
        if let Some(r) = &self.release {
            write!(f, "-{r}")?;
        }
        Ok(())
    }
}

/// A comparison operator of a dependency (`flags` in primary.xml).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Op {
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `=`
    Eq,
    /// `>=`
    Ge,
    /// `>`
    Gt,
}

impl Op {
    /// Parses primary.xml's `flags` attribute (`LT`, `LE`, `EQ`, `GE`, `GT`).
    pub fn from_flags(flags: &str) -> Option<Op> {
        Some(match flags {
            "LT" => Op::Lt,
            "LE" => Op::Le,
            "EQ" => Op::Eq,
            "GE" => Op::Ge,
            "GT" => Op::Gt,
            _ => return None,
        })
    }

    /// Parses the operator of a rich dependency (`<`, `<=`, `=`, `==`, `>=`, `>`).
    pub fn from_symbol(s: &str) -> Option<Op> {
        Some(match s {
            "<" => Op::Lt,
            "<=" | "=<" => Op::Le,
            "=" | "==" => Op::Eq,
            ">=" | "=>" => Op::Ge,
            ">" => Op::Gt,
            _ => return None,
        })
    }

    fn less(self) -> bool {
        matches!(self, Op::Lt | Op::Le)
    }
    fn greater(self) -> bool {
        matches!(self, Op::Gt | Op::Ge)
    }
    fn equal(self) -> bool {
        matches!(self, Op::Le | Op::Eq | Op::Ge)
    }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Op::Lt => "<",
            Op::Le => "<=",
            Op::Eq => "=",
            Op::Ge => ">=",
            Op::Gt => ">",
        })
    }
}

/// The version part of a dependency: `None` is unversioned (any version).
pub type Range = Option<(Op, Evr)>;

/// Whether a provided range `a` satisfies a required range `b`, as libsolv decides it for dnf
/// (`pool_intersect_evrs` in `src/pooldep.c`, which compares with `pool_evrcmp_str` in
/// `EVRCMP_MATCH_RELEASE` mode, see [`Evr::dep_cmp`]); rpm's `rpmdsCompare` gives the same answers. An
/// unversioned side matches anything.
pub fn overlaps(a: &Range, b: &Range) -> bool {
    let (Some((pf, pevr)), Some((f, evr))) = (a, b) else {
        return true;
    };
    // Both point the same way: they always meet.
    if (pf.less() && f.less()) || (pf.greater() && f.greater()) {
        return true;
    }
    match pevr.dep_cmp(evr) {
        -2 => pf.equal(),
        -1 => f.less() || pf.greater(),
        0 => pf.equal() && f.equal(),
        1 => f.greater() || pf.less(),
        _ => f.equal(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// rpm's own cases: rpm-software-management/rpm tests/rpmvercmp.at (`RPMVERCMP(a, b, expected)`).
    const RPM_CASES: &[(&str, &str, i32)] = &[
        ("1.0", "1.0", 0),
        ("1.0", "2.0", -1),
        ("2.0", "1.0", 1),
        ("2.0.1", "2.0.1", 0),
        ("2.0", "2.0.1", -1),
        ("2.0.1", "2.0", 1),
        ("2.0.1a", "2.0.1a", 0),
        ("2.0.1a", "2.0.1", 1),
        ("2.0.1", "2.0.1a", -1),
        ("5.5p1", "5.5p1", 0),
        ("5.5p1", "5.5p2", -1),
        ("5.5p2", "5.5p1", 1),
        ("5.5p10", "5.5p10", 0),
        ("5.5p1", "5.5p10", -1),
        ("5.5p10", "5.5p1", 1),
        ("10xyz", "10.1xyz", -1),
        ("10.1xyz", "10xyz", 1),
        ("xyz10", "xyz10", 0),
        ("xyz10", "xyz10.1", -1),
        ("xyz10.1", "xyz10", 1),
        ("xyz.4", "xyz.4", 0),
        ("xyz.4", "8", -1),
        ("8", "xyz.4", 1),
        ("xyz.4", "2", -1),
        ("2", "xyz.4", 1),
        ("5.5p2", "5.6p1", -1),
        ("5.6p1", "5.5p2", 1),
        ("5.6p1", "6.5p1", -1),
        ("6.5p1", "5.6p1", 1),
        ("6.0.rc1", "6.0", 1),
        ("6.0", "6.0.rc1", -1),
        ("10b2", "10a1", 1),
        ("10a2", "10b2", -1),
        ("1.0aa", "1.0aa", 0),
        ("1.0a", "1.0aa", -1),
        ("1.0aa", "1.0a", 1),
        ("10.0001", "10.0001", 0),
        ("10.0001", "10.1", 0),
        ("10.1", "10.0001", 0),
        ("10.0001", "10.0039", -1),
        ("10.0039", "10.0001", 1),
        ("4.999.9", "5.0", -1),
        ("5.0", "4.999.9", 1),
        ("20101121", "20101121", 0),
        ("20101121", "20101122", -1),
        ("20101122", "20101121", 1),
        ("2_0", "2_0", 0),
        ("2.0", "2_0", 0),
        ("2_0", "2.0", 0),
        // RhBug:178798
        ("a", "a", 0),
        ("a+", "a+", 0),
        ("a+", "a_", 0),
        ("a_", "a+", 0),
        ("+a", "+a", 0),
        ("+a", "_a", 0),
        ("_a", "+a", 0),
        ("+_", "+_", 0),
        ("_+", "+_", 0),
        ("_+", "_+", 0),
        ("+", "_", 0),
        ("_", "+", 0),
        // tilde
        ("1.0~rc1", "1.0~rc1", 0),
        ("1.0~rc1", "1.0", -1),
        ("1.0", "1.0~rc1", 1),
        ("1.0~rc1", "1.0~rc2", -1),
        ("1.0~rc2", "1.0~rc1", 1),
        ("1.0~rc1~git123", "1.0~rc1~git123", 0),
        ("1.0~rc1~git123", "1.0~rc1", -1),
        ("1.0~rc1", "1.0~rc1~git123", 1),
        // caret
        ("1.0^", "1.0^", 0),
        ("1.0^", "1.0", 1),
        ("1.0", "1.0^", -1),
        ("1.0^git1", "1.0^git1", 0),
        ("1.0^git1", "1.0", 1),
        ("1.0", "1.0^git1", -1),
        ("1.0^git1", "1.0^git2", -1),
        ("1.0^git2", "1.0^git1", 1),
        ("1.0^git1", "1.01", -1),
        ("1.01", "1.0^git1", 1),
        ("1.0^20160101", "1.0^20160101", 0),
        ("1.0^20160101", "1.0.1", -1),
        ("1.0.1", "1.0^20160101", 1),
        ("1.0^20160101^git1", "1.0^20160101^git1", 0),
        ("1.0^20160102", "1.0^20160101^git1", 1),
        ("1.0^20160101^git1", "1.0^20160102", -1),
        // tilde and caret
        ("1.0~rc1^git1", "1.0~rc1^git1", 0),
        ("1.0~rc1^git1", "1.0~rc1", 1),
        ("1.0~rc1", "1.0~rc1^git1", -1),
        ("1.0^git1~pre", "1.0^git1~pre", 0),
        ("1.0^git1", "1.0^git1~pre", 1),
        ("1.0^git1~pre", "1.0^git1", -1),
        // documented oddities (RhBug:811992) and non-ASCII bytes, which are separators
        ("1b.fc17", "1b.fc17", 0),
        ("1b.fc17", "1.fc17", -1),
        ("1.fc17", "1b.fc17", 1),
        ("1g.fc17", "1g.fc17", 0),
        ("1g.fc17", "1.fc17", 1),
        ("1.fc17", "1g.fc17", -1),
        ("1.1.α", "1.1.α", 0),
        ("1.1.α", "1.1.β", 0),
        ("1.1.β", "1.1.α", 0),
        ("1.1.αα", "1.1.α", 0),
        ("1.1.α", "1.1.ββ", 0),
        ("1.1.ββ", "1.1.αα", 0),
    ];

    #[test]
    fn rpmvercmp_matches_rpm_test_suite() {
        for &(a, b, want) in RPM_CASES {
            let got = match rpmvercmp(a, b) {
                Ordering::Less => -1,
                Ordering::Equal => 0,
                Ordering::Greater => 1,
            };
            assert_eq!(got, want, "rpmvercmp({a}, {b})");
        }
    }

    #[test]
    fn evr_order_and_parse() {
        let e = |s: &str| Evr::parse(s).unwrap();
        let cases = [
            ("1:1.0-1", "2.0-1", Ordering::Greater),
            ("1.0-2", "1.0-10", Ordering::Less),
            ("1.30.0-150500.1.1", "1.30.0-1", Ordering::Greater),
            ("0:1.0-1", "1.0-1", Ordering::Equal),
        ];
        for (a, b, want) in cases {
            assert_eq!(e(a).newer_cmp(&e(b)), want, "{a} vs {b}");
        }
        assert_eq!(e("2:1.5-3.el9").to_string(), "2:1.5-3.el9");
        assert_eq!(e("1.5").release, None);
        assert!(Evr::parse("x:1").is_err());
    }

    /// `Evr::match_cmp` on pairs whose answer libsolv's `pool_evrcmp_str(.., EVRCMP_MATCH)` gives (after
    /// `makeevr_parts` dropped the trivial epochs).
    #[test]
    fn match_cmp_like_libsolv() {
        let e = |s: &str| Evr::parse(s).unwrap();
        use Ordering::*;
        let cases = [
            // only one side has an epoch: a non-zero one decides
            ("2.10", "1:0", Less),
            ("2.10-1", "1:0", Less),
            ("1:0", "2.10", Greater),
            ("0:3.0.0", "2:2.74", Less),
            ("3.0.0-1", "2:2.74", Less),
            ("1:1.0", "2.0", Greater),
            ("1:1.0-1", "99", Greater),
            // epoch 0 is no epoch
            ("0:1.0", "1.0", Equal),
            ("0:1.0-1", "1.0-1", Equal),
            ("0:2.0", "1.0", Greater),
            ("1.0", "0:2.0", Less),
            // both have one: compared numerically
            ("1:1.0", "1:1.0", Equal),
            ("2:1.0", "1:3.0", Greater),
            ("10:1", "9:2", Greater),
            ("01:1", "1:1", Equal),
            // a release is compared only when both sides have one
            ("1:1.0-1", "1:1.0", Equal),
            ("1.0", "1.0-2", Equal),
            ("1.0-1", "1.0-2", Less),
            ("1.0-10", "1.0-9", Greater),
            ("1.0~rc1-5", "1.0", Less),
        ];
        for (a, b, want) in cases {
            assert_eq!(e(a).match_cmp(&e(b)), want, "{a} vs {b}");
        }
        // An empty version (a requirement that names only an epoch or a release) is not compared.
        let only_epoch = Evr::new(Some("1"), "", None).unwrap();
        assert_eq!(only_epoch.match_cmp(&e("1:5.0-1")), Equal);
        assert_eq!(only_epoch.match_cmp(&e("5.0-1")), Greater);
    }

    #[test]
    fn ranges_overlap_like_rpmds_compare() {
        let r =
            |op: &str, evr: &str| Some((Op::from_symbol(op).unwrap(), Evr::parse(evr).unwrap()));
        let cases = [
            // provide, require, overlaps
            (r("=", "1.4.0-1"), r("<", "1.5.0"), true),
            (r("=", "1.5.1-1"), r("<", "1.5.0"), false),
            (r("=", "1.4.0-1"), r(">=", "1.4.0"), true),
            (r("=", "1.4.0-1"), r(">", "1.4.0"), false),
            (r("=", "1.4.0-1"), r("=", "1.4.0"), true),
            (r("=", "1.4.0-1"), r("=", "1.4.0-2"), false),
            (r("=", "1.4.0-1"), r("<=", "1.4.0-1"), true),
            // a missing epoch is 0: a provider's non-zero epoch makes it newer than any epoch-less EVR
            (r("=", "1:1.0-1"), r(">=", "2.0"), true),
            (r("=", "1:1.0-1"), r("<", "2.0"), false),
            (r("=", "2.10-1"), r("<", "1:0"), true),
            // one side without a release: it matches when it allows equality (rpmdsCompare, libsolv's -2/2)
            (r("=", "2.10"), r("<", "2.10-1"), true),
            (r("=", "2.10"), r(">", "2.10-1"), true),
            (r("=", "2.10-1"), r("<", "2.10"), false),
            (r("=", "2.10-1"), r(">", "2.10"), false),
            (r("<", "2.10-1"), r(">=", "2.10"), true),
            (r("=", "0:3.0.0-1"), r(">=", "2:2.74"), false),
            (r("=", "1:1.0-1"), r(">=", "0.5"), true),
            (r("=", "1:1.0-1"), r(">=", "2:0.1"), false),
            (r("=", "2:1.0-1"), r(">=", "1:3.0"), true),
            (r(">=", "2.0"), r("<", "3.0"), true),
            (r(">=", "3.0"), r("<", "3.0"), false),
            (r("<=", "3.0"), r("<", "3.0"), true),
            (None, r(">=", "99"), true),
            (r("=", "1.31.0~rc1-1"), r("<", "1.31.0"), true),
            (r("=", "1.30.0^20240101git-1"), r(">", "1.30.0"), true),
        ];
        for (p, q, want) in cases {
            assert_eq!(overlaps(&p, &q), want, "{p:?} vs {q:?}");
        }
    }
}
