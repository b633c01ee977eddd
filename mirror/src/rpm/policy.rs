//! Which of several providers dnf picks: libsolv's `policy_filter_unwanted` (`src/policy.c`) in
//! `POLICY_MODE_CHOOSE`, the order `selectandinstall` (`src/solver.c`) takes the first of, for a fresh
//! install with every repo at dnf's default priority (99) and cost (1000):
//!
//! 1. `prune_to_highest_prio`: the repos' priorities are all equal, nothing is pruned;
//! 2. `prune_to_best_arch`: keep `noarch` and the best arch among the candidates (x86_64 over i686);
//! 3. `prune_to_best_version`: sort by name (`strcmp`), keep the newest of each name (`EVRCMP_COMPARE`; the
//!    better arch on a tie), then drop candidates another candidate obsoletes (`prune_obsoleted`);
//! 4. `prune_to_recommended`: only weak dependencies would prune here, and they are not followed;
//! 5. `dislike_old_versions`: a candidate that has a newer version of the same name and arch anywhere in
//!    the repos (one that does not satisfy the requirement) goes to the back;
//! 6. `sort_by_common_dep`: for each capability several candidates provide with `=` (or `<`, `<=`), the
//!    ones providing a lower version go back, one step per lower version (a stable sort by that
//!    "badness"): of `generic-logos-httpd` (`system-logos-httpd = 18.0.0`) and `rocky-logos-httpd`
//!    (`system-logos-httpd = 90.15`), rocky comes first although generic sorts first by name;
//! 7. `move_installed_to_front`, `prefer_suggested`, `policy_prefer_favored`: nothing is installed,
//!    suggested or favored on an empty root.
//!
//! The solver takes the first; should it turn out impossible, libsolv runs the same filter over the
//! remaining candidates, which is what [`Policy::order`] lays out in advance.

use std::cmp::Ordering;
use std::collections::HashMap;

use super::arch::ArchPolicy;
use super::metadata::Package;
use super::vercmp::{overlaps, Evr, Op};

/// How many candidates [`Policy::order`] places by rerunning the filter; the rest follow by arch, name and
/// version (a requirement rarely needs more than its first few providers ruled out).
const EXACT: usize = 8;

/// The provider-choice policy over a set of packages.
pub struct Policy<'a> {
    pkgs: &'a [Package],
    arch: &'a ArchPolicy,
    /// The newest EVR of each name and arch.
    newest: HashMap<(&'a str, &'a str), &'a Evr>,
}

impl<'a> Policy<'a> {
    /// The policy for `pkgs` (every package of the repos, already limited to installable arches).
    pub fn new(pkgs: &'a [Package], arch: &'a ArchPolicy) -> Policy<'a> {
        let mut newest: HashMap<(&str, &str), &Evr> = HashMap::new();
        for p in pkgs {
            let e = newest
                .entry((p.name.as_str(), p.arch.as_str()))
                .or_insert(&p.evr);
            if p.evr.newer_cmp(e) == Ordering::Greater {
                *e = &p.evr;
            }
        }
        Policy { pkgs, arch, newest }
    }

    fn score(&self, i: usize) -> u32 {
        self.arch.score(&self.pkgs[i].arch).unwrap_or(u32::MAX)
    }

    /// All of `candidates` (package indexes), in the order libsolv would try them: the first is what
    /// `policy_filter_unwanted` picks, the next what it picks once the first is ruled out, and so on.
    pub fn order(&self, candidates: &[usize]) -> Vec<usize> {
        let mut rest: Vec<usize> = candidates.to_vec();
        rest.sort_unstable();
        rest.dedup();
        let mut out = Vec::with_capacity(rest.len());
        while !rest.is_empty() && out.len() < EXACT {
            let first = self.filter_unwanted(&rest)[0];
            out.push(first);
            rest.retain(|&i| i != first);
        }
        let best = rest.iter().map(|&i| self.score(i)).filter(|&a| a > 1).min();
        rest.sort_by(|&a, &b| {
            let worse = |i: usize| self.score(i) > 1 && Some(self.score(i)) != best;
            worse(a)
                .cmp(&worse(b))
                .then_with(|| self.pkgs[a].name.cmp(&self.pkgs[b].name))
                .then_with(|| self.pkgs[b].evr.newer_cmp(&self.pkgs[a].evr))
                .then_with(|| self.score(a).cmp(&self.score(b)))
                .then(a.cmp(&b))
        });
        out.extend(rest);
        out
    }

    /// `policy_filter_unwanted(.., POLICY_MODE_CHOOSE)`: the candidates libsolv keeps, best first (never
    /// empty for a non-empty input).
    pub fn filter_unwanted(&self, candidates: &[usize]) -> Vec<usize> {
        let mut l = candidates.to_vec();
        if l.len() > 1 {
            self.prune_to_best_arch(&mut l);
        }
        if l.len() > 1 {
            self.prune_to_best_version(&mut l);
        }
        if l.len() > 1 {
            self.dislike_old_versions(&mut l);
            self.sort_by_common_dep(&mut l);
        }
        l
    }

    fn prune_to_best_arch(&self, l: &mut Vec<usize>) {
        let Some(best) = l.iter().map(|&i| self.score(i)).filter(|&a| a > 1).min() else {
            return;
        };
        l.retain(|&i| {
            let a = self.score(i);
            a == 1 || a == best
        });
    }

    fn prune_to_best_version(&self, l: &mut Vec<usize>) {
        l.sort_by(|&a, &b| {
            let (pa, pb) = (&self.pkgs[a], &self.pkgs[b]);
            let (sa, sb) = (self.score(a), self.score(b));
            pa.name.as_bytes().cmp(pb.name.as_bytes()).then_with(|| {
                if sa != sb && sa > 1 && sb > 1 {
                    sa.cmp(&sb)
                } else {
                    a.cmp(&b)
                }
            })
        });
        let mut out: Vec<usize> = Vec::new();
        for &i in l.iter() {
            match out.last_mut() {
                Some(best) if self.pkgs[*best].name == self.pkgs[i].name => {
                    if self.pkgs[*best].evr.newer_cmp(&self.pkgs[i].evr) == Ordering::Less {
                        *best = i;
                    }
                }
                _ => out.push(i),
            }
        }
        // prune_obsoleted: drop what another candidate (of another name) obsoletes, unless it obsoletes
        // that one back.
        if out.len() > 1 {
            let obsoletes = |a: usize, b: usize| {
                let (pa, pb) = (&self.pkgs[a], &self.pkgs[b]);
                pa.name != pb.name
                    && pa.obsoletes.iter().any(|o| {
                        o.name == pb.name && overlaps(&Some((Op::Eq, pb.evr.clone())), &o.range)
                    })
            };
            let keep: Vec<usize> = out
                .iter()
                .copied()
                .filter(|&b| {
                    !out.iter()
                        .any(|&a| a != b && obsoletes(a, b) && !obsoletes(b, a))
                })
                .collect();
            if !keep.is_empty() {
                out = keep;
            }
        }
        *l = out;
    }

    fn dislike_old_versions(&self, l: &mut Vec<usize>) {
        let old = |i: usize| {
            let p = &self.pkgs[i];
            self.newest
                .get(&(p.name.as_str(), p.arch.as_str()))
                .is_some_and(|n| n.newer_cmp(&p.evr) == Ordering::Greater)
        };
        let (good, bad): (Vec<usize>, Vec<usize>) = l.iter().partition(|&&i| !old(i));
        *l = good;
        l.extend(bad);
    }

    fn sort_by_common_dep(&self, l: &mut [usize]) {
        // (candidate position, provided name, evr, is `<`)
        let mut ent: Vec<(usize, &str, &Evr, bool)> = Vec::new();
        for (k, &i) in l.iter().enumerate() {
            for d in &self.pkgs[i].provides {
                let Some((op, evr)) = &d.range else { continue };
                match op {
                    Op::Eq => {
                        // ignore hashes
                        let s = evr.to_string();
                        if s.len() >= 4 && s.bytes().all(|c| matches!(c, b'a'..=b'f' | b'0'..=b'9'))
                        {
                            continue;
                        }
                        ent.push((k, &d.name, evr, false));
                    }
                    Op::Le => ent.push((k, &d.name, evr, false)),
                    Op::Lt => ent.push((k, &d.name, evr, true)),
                    _ => {}
                }
            }
        }
        if ent.len() < 2 {
            return;
        }
        // sort_by_name_evr_sortcmp: by name, the highest version first, `<` after `=` on a tie.
        let cmp = |a: &(usize, &str, &Evr, bool), b: &(usize, &str, &Evr, bool)| -> i32 {
            let r = b.2.dep_cmp(a.2);
            if r == 0 && (a.3 || b.3) {
                if !b.3 {
                    return 1;
                }
                if !a.3 {
                    return -1;
                }
            }
            r
        };
        ent.sort_by(|a, b| {
            a.1.cmp(b.1).then_with(|| match cmp(a, b) {
                r if r < 0 => Ordering::Less,
                0 => Ordering::Equal,
                _ => Ordering::Greater,
            })
        });
        let mut badness = vec![0usize; l.len()];
        let mut bad = 0;
        let mut havebad = false;
        for j in 0..ent.len() {
            if j > 0 && ent[j - 1].1 == ent[j].1 {
                if ent[j - 1].0 != ent[j].0 && cmp(&ent[j - 1], &ent[j]) == -1 {
                    bad += 1;
                    havebad = true;
                }
            } else {
                bad = 0;
            }
            badness[ent[j].0] += bad;
        }
        if havebad {
            let mut v: Vec<(usize, usize)> = l.iter().copied().zip(badness).collect();
            v.sort_by_key(|&(_, b)| b);
            for (k, (i, _)) in v.into_iter().enumerate() {
                l[k] = i;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rpm::metadata::Dep;

    fn pkg(name: &str, evr: &str, arch: &str, provides: &[(&str, Op, &str)]) -> Package {
        Package {
            name: name.into(),
            arch: arch.into(),
            evr: Evr::parse(evr).unwrap(),
            provides: provides
                .iter()
                .map(|(n, op, e)| Dep {
                    name: n.to_string(),
                    range: Some((*op, Evr::parse(e).unwrap())),
                })
                .collect(),
            ..Default::default()
        }
    }

    fn names(pkgs: &[Package], v: Vec<usize>) -> Vec<String> {
        v.into_iter().map(|i| pkgs[i].nevra()).collect()
    }

    #[test]
    fn the_higher_common_provide_wins_over_the_name() {
        let pkgs = vec![
            pkg(
                "generic-logos-httpd",
                "18.0.0-1",
                "noarch",
                &[("system-logos-httpd", Op::Eq, "18.0.0-1")],
            ),
            pkg(
                "rocky-logos-httpd",
                "90.15-1",
                "noarch",
                &[("system-logos-httpd", Op::Eq, "90.15-1")],
            ),
        ];
        let arch = ArchPolicy::new("x86_64");
        let p = Policy::new(&pkgs, &arch);
        assert_eq!(
            names(&pkgs, p.order(&[0, 1])),
            [
                "rocky-logos-httpd-90.15-1.noarch",
                "generic-logos-httpd-18.0.0-1.noarch"
            ]
        );
    }

    #[test]
    fn arch_name_version_old_and_obsoleted() {
        let mut pkgs = vec![
            pkg("b", "1-1", "x86_64", &[]),
            pkg("a", "1-1", "i686", &[]),
            pkg("c", "1-1", "x86_64", &[]),
            pkg("c", "2-1", "x86_64", &[]),
            pkg("a", "2-1", "noarch", &[]),
            pkg("aaold", "1-1", "x86_64", &[]),
            pkg("aaold", "2-1", "x86_64", &[]),
        ];
        let arch = ArchPolicy::new("x86_64");
        {
            let p = Policy::new(&pkgs, &arch);
            // i686 a is pruned (x86_64 b and c exist), noarch a stays; then by name, newest c.
            assert_eq!(
                names(&pkgs, p.filter_unwanted(&[0, 1, 2, 3])),
                ["b-1-1.x86_64", "c-2-1.x86_64"]
            );
            assert_eq!(
                names(&pkgs, p.filter_unwanted(&[0, 2, 4])),
                ["a-2-1.noarch", "b-1-1.x86_64", "c-1-1.x86_64"]
            );
            // aaold-1 has a newer aaold-2 that is not a candidate: it goes last, though first by name.
            assert_eq!(
                names(&pkgs, p.filter_unwanted(&[5, 0])),
                ["b-1-1.x86_64", "aaold-1-1.x86_64"]
            );
            assert_eq!(
                names(&pkgs, p.order(&[0, 1, 3])),
                ["b-1-1.x86_64", "c-2-1.x86_64", "a-1-1.i686"]
            );
        }
        pkgs[2].obsoletes.push(Dep {
            name: "b".into(),
            range: None,
        });
        let p = Policy::new(&pkgs, &arch);
        assert_eq!(names(&pkgs, p.filter_unwanted(&[0, 2])), ["c-1-1.x86_64"]);
    }
}
