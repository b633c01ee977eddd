//! Architectures: which packages a target installs, which it prefers, and which may sit side by side.
//!
//! dnf hands its base arch to libsolv's `pool_setarch` (`src/poolarch.c`), whose policy for `x86_64` is
//! `x86_64:athlon:i686:i586:i486:i386` (EL's libsolv is built with `FEDORA`; other builds leave `athlon`
//! out), with `noarch` always installable. Each `:` starts a worse class: `prune_to_best_arch`
//! (`src/policy.c`) keeps the best class among a requirement's providers, plus `noarch`. Two packages of
//! the same name may be installed together when their colors differ (dnf sets
//! `POOL_FLAG_IMPLICITOBSOLETEUSESCOLORS`; `pool_arch2color_slow`: `noarch` is every color, an arch with
//! `64` in its name or `s390x` is 64-bit, the rest 32-bit): that is how `foo.x86_64` and `foo.i686`
//! coexist.

/// libsolv's arch policies (`archpolicies` in `src/poolarch.c`, `FEDORA` variant) for the targets a bundle
/// is built for; any other target accepts only itself (and `noarch`).
const POLICIES: &[(&str, &str)] = &[
    ("x86_64", "x86_64:athlon:i686:i586:i486:i386"),
    ("x86_64_v2", "x86_64_v2:x86_64:athlon:i686:i586:i486:i386"),
    (
        "x86_64_v3",
        "x86_64_v3:x86_64_v2:x86_64:athlon:i686:i586:i486:i386",
    ),
    ("i686", "i686:i586:i486:i386"),
    ("i586", "i586:i486:i386"),
    ("s390x", "s390x:s390"),
    ("ppc64", "ppc64:ppc"),
];

/// The arches a target installs, best first.
#[derive(Debug, Clone)]
pub struct ArchPolicy {
    order: Vec<String>,
}

/// Which packages of one name may be installed together: one per color, `All` excludes both others.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Color {
    /// 64-bit arches.
    Bits64,
    /// 32-bit arches.
    Bits32,
    /// `noarch`, which conflicts with a same-name package of any arch.
    All,
}

impl ArchPolicy {
    /// The policy for target `arch` (the profile's `arch`).
    pub fn new(arch: &str) -> ArchPolicy {
        let list = POLICIES
            .iter()
            .find(|(a, _)| *a == arch)
            .map(|(_, l)| *l)
            .unwrap_or(arch);
        ArchPolicy {
            order: list.split(':').map(str::to_string).collect(),
        }
    }

    /// Whether packages of `arch` can be installed on the target.
    pub fn accepts(&self, arch: &str) -> bool {
        self.score(arch).is_some()
    }

    /// libsolv's arch score: 1 for `noarch`, then 2, 3, ... from the best arch down (every arch in these
    /// policies is its own class); `None` for an arch the target cannot install.
    pub fn score(&self, arch: &str) -> Option<u32> {
        if arch == "noarch" {
            return Some(1);
        }
        self.order
            .iter()
            .position(|a| a == arch)
            .map(|i| i as u32 + 2)
    }

    /// The accepted arches, best first, `noarch` last.
    pub fn arches(&self) -> Vec<&str> {
        let mut v: Vec<&str> = self.order.iter().map(String::as_str).collect();
        v.push("noarch");
        v
    }
}

/// `pool_arch2color_slow`: the color of an arch.
pub fn color(arch: &str) -> Color {
    if arch == "noarch" || arch == "all" || arch == "any" {
        Color::All
    } else if arch == "s390x" || arch.contains("64") {
        Color::Bits64
    } else {
        Color::Bits32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn x86_64_takes_32_bit_x86_and_noarch() {
        let p = ArchPolicy::new("x86_64");
        for a in ["x86_64", "i686", "i586", "i486", "i386", "athlon", "noarch"] {
            assert!(p.accepts(a), "{a}");
        }
        for a in ["aarch64", "src", "ppc64le", "x86_64_v2"] {
            assert!(!p.accepts(a), "{a}");
        }
        assert!(p.score("x86_64") < p.score("i686"));
        assert!(p.score("i686") < p.score("i386"));
        assert_eq!(p.score("noarch"), Some(1));
        let p = ArchPolicy::new("aarch64");
        assert_eq!(p.arches(), ["aarch64", "noarch"]);
        assert!(!p.accepts("x86_64"));
        assert_eq!(color("x86_64"), Color::Bits64);
        assert_eq!(color("i686"), Color::Bits32);
        assert_eq!(color("aarch64"), Color::Bits64);
        assert_eq!(color("noarch"), Color::All);
    }
}
