//! The dependency closure, solved the way dnf (libsolv, a SAT solver) would install it on an empty node.
//!
//! A greedy "newest provider per requirement" walk answers differently from dnf: kubelet needs
//! `kubernetes-cni < 1.5.0` while kubeadm asks `>= 1.4.0`, so greedy bundles 1.5.1 (and its dependencies)
//! beside the 1.4.0 that will be installed (`dnf --assumeno install` on EL9 picks
//! 1.4.0; mirror/examples/bench_rpm.rs compares the two). So we hand the problem to resolvo, a CDCL SAT
//! solver modelled on libsolv, encoded like this:
//!
//! - every package name and color (64-bit, 32-bit, noarch: [`super::arch`]) is a resolvo name whose
//!   solvables are the packages of that name and color (one may be installed, the best arch and then the
//!   newest is tried first; noarch excludes the others; an i686 package needs its x86_64 twin when the
//!   name has one, libsolv's lock-step);
//! - every capability that something requires (a package name, a virtual provide, a soname, a file) is a
//!   resolvo name whose solvables are "P provides C" records, several of which may be chosen at once; each
//!   record requires exactly its package P, and P requires (one of) its records for C, so a record is chosen
//!   exactly when its package is, and a requirement already met by a chosen package costs nothing;
//! - a requirement `C op EVR` is the set of records whose provided range overlaps it (libsolv's `pool_intersect_evrs`);
//!   `rpmlib(...)` requirements are rpm's own features and skipped;
//! - rich dependencies: `or` is a union of such sets, `and` separate requirements, `if` a conditional
//!   requirement, `unless` the equivalent `or`; a nested non-`or` term becomes an auxiliary name with one
//!   solvable carrying its requirements; `with`/`without` are approximated as `and`/their first term;
//! - `Conflicts:` and `Obsoletes:` (package names, not provides, as dnf) forbid the matching packages.
//! - among a requirement's providers, the order in which they are tried is libsolv's provider choice
//!   ([`super::policy`]).
//!
//! Weak dependencies (Recommends, Supplements) are installed as dnf installs them by default
//! (`install_weak_deps=True`): see [`resolve`].

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::fmt::Display;

use anyhow::Result;
use resolvo::{
    Candidates, Condition, ConditionId, ConditionalRequirement, DenseIndex, Dependencies,
    DependencyProvider, HintDependenciesAvailable, Interner, KnownDependencies, LogicalOperator,
    NameId, Problem, Requirement, SolvableId, Solver, SolverCache, StringId, UnsolvableOrCancelled,
    VersionSetId, VersionSetUnionId,
};

use super::arch::{self, ArchPolicy, Color};
use super::metadata::{Dep, Package};
use super::policy::Policy;
use super::rich::{self, Rich};
use super::vercmp::{overlaps, rpmvercmp, Evr, Op, Range};

/// Where each capability comes from: package index and the provided range (files are unversioned).
pub struct Index {
    caps: HashMap<String, Vec<(usize, Range)>>,
    /// Packages by name.
    names: HashMap<String, Vec<usize>>,
}

impl Index {
    /// Indexes the provides and listed files of `pkgs`.
    pub fn new(pkgs: &[Package]) -> Index {
        let mut caps: HashMap<String, Vec<(usize, Range)>> = HashMap::new();
        let mut names: HashMap<String, Vec<usize>> = HashMap::new();
        for (i, p) in pkgs.iter().enumerate() {
            names.entry(p.name.clone()).or_default().push(i);
            for d in &p.provides {
                caps.entry(d.name.clone())
                    .or_default()
                    .push((i, d.range.clone()));
            }
            for f in &p.files {
                caps.entry(f.clone()).or_default().push((i, None));
            }
        }
        Index { caps, names }
    }

    /// The packages whose provides overlap `dep`, each once.
    pub fn providers(&self, dep: &Dep) -> Vec<usize> {
        let mut out: Vec<usize> = self
            .caps
            .get(&dep.name)
            .into_iter()
            .flatten()
            .filter(|(_, r)| overlaps(r, &dep.range))
            .map(|(i, _)| *i)
            .collect();
        out.dedup();
        out
    }
}

/// rpm's built-in capabilities, provided by rpm itself rather than by a package.
fn is_rpmlib(name: &str) -> bool {
    name.starts_with("rpmlib(")
}

fn atoms(r: &Rich, out: &mut Vec<Dep>) {
    match r {
        Rich::Dep(d) => out.push(d.clone()),
        Rich::And(v) | Rich::Or(v) | Rich::With(v) => v.iter().for_each(|x| atoms(x, out)),
        Rich::Without(a, b) => {
            atoms(a, out);
            atoms(b, out);
        }
        Rich::If(a, b, c) | Rich::Unless(a, b, c) => {
            atoms(a, out);
            atoms(b, out);
            if let Some(c) = c {
                atoms(c, out);
            }
        }
    }
}

/// The simple dependencies a rich dependency asks for, leaving out the conditions of `if` / `unless` and the
/// excluded side of `without`: what could be installed to meet it.
fn wanted_atoms(r: &Rich, out: &mut Vec<Dep>) {
    match r {
        Rich::Dep(d) => out.push(d.clone()),
        Rich::And(v) | Rich::Or(v) | Rich::With(v) => v.iter().for_each(|x| wanted_atoms(x, out)),
        Rich::Without(a, _) => wanted_atoms(a, out),
        Rich::If(a, _, c) | Rich::Unless(a, _, c) => {
            wanted_atoms(a, out);
            if let Some(c) = c {
                wanted_atoms(c, out);
            }
        }
    }
}

/// The simple dependencies `d` asks for: itself, or a rich dependency's [`wanted_atoms`] (none when it does
/// not parse).
fn wanted(d: &Dep) -> Vec<Dep> {
    let mut out = Vec::new();
    if !rich::is_rich(&d.name) {
        out.push(d.clone());
    } else if let Ok(r) = rich::parse(&d.name) {
        wanted_atoms(&r, &mut out);
    }
    out
}

/// Every simple dependency a package's requirements mention (rich ones expanded), `rpmlib()` skipped.
fn requirement_atoms(p: &Package) -> Vec<Dep> {
    let mut out = Vec::new();
    for d in &p.requires {
        if is_rpmlib(&d.name) {
            continue;
        }
        if rich::is_rich(&d.name) {
            match rich::parse(&d.name) {
                Ok(r) => atoms(&r, &mut out),
                Err(e) => log::warn!("{}: ignoring requirement: {e:#}", p.nevra()),
            }
        } else {
            out.push(d.clone());
        }
    }
    out
}

/// A requested package: `name`, `name-version` or `name-version-release` (version may carry `epoch:`), or a
/// capability (`/usr/bin/foo`, a virtual provide) when no package has that name.
fn match_spec(pkgs: &[Package], index: &Index, spec: &str) -> Option<(String, Vec<usize>, bool)> {
    let by_name = |name: &str, f: &dyn Fn(&Package) -> bool| -> Vec<usize> {
        (0..pkgs.len())
            .filter(|&i| pkgs[i].name == name && f(&pkgs[i]))
            .collect()
    };
    let all = by_name(spec, &|_| true);
    if !all.is_empty() {
        return Some((spec.to_string(), all, true));
    }
    // name-version
    if let Some((name, version)) = spec.rsplit_once('-') {
        if let Ok(want) = Evr::parse(version) {
            let m = by_name(name, &|p| {
                rpmvercmp(&p.evr.version, &want.version).is_eq()
                    && (!version.contains(':') || p.evr.epoch == want.epoch)
            });
            if !m.is_empty() {
                return Some((name.to_string(), m, true));
            }
        }
        // name-version-release
        if let Some((name, _)) = name.rsplit_once('-') {
            let vr = &spec[name.len() + 1..];
            if let Ok(want) = Evr::parse(vr) {
                // dnf matches the epoch only when the request names one (`name-epoch:version-release`).
                let m = by_name(name, &|p| {
                    (!vr.contains(':') || p.evr.epoch == want.epoch)
                        && rpmvercmp(&p.evr.version, &want.version).is_eq()
                        && p.evr.release.as_deref().is_some_and(|r| {
                            want.release
                                .as_deref()
                                .is_some_and(|w| rpmvercmp(r, w).is_eq())
                        })
                });
                if !m.is_empty() {
                    return Some((name.to_string(), m, true));
                }
            }
        }
    }
    let provided = index.providers(&Dep {
        name: spec.to_string(),
        range: None,
    });
    if !provided.is_empty() {
        return Some((spec.to_string(), provided, false));
    }
    None
}

/// The requested packages resolved to package indexes, or an error naming the first one no repo has.
fn roots(
    pkgs: &[Package],
    index: &Index,
    requests: &[String],
) -> Result<Vec<(String, Vec<usize>, bool)>> {
    requests
        .iter()
        .map(|spec| {
            match_spec(pkgs, index, spec)
                .ok_or_else(|| super::Error::NoSuchPackage { spec: spec.clone() }.into())
        })
        .collect()
}

/// Every package reachable from the requests through any provider of any requirement (and the other
/// arches of each one's name and EVR, its multilib lock-step partners), and the requirements nothing
/// provides (package index, requirement).
fn closure(
    pkgs: &[Package],
    index: &Index,
    start: &[usize],
) -> (BTreeSet<usize>, Vec<(usize, Dep)>) {
    let mut seen: BTreeSet<usize> = start.iter().copied().collect();
    let mut todo: Vec<usize> = start.to_vec();
    let mut missing = Vec::new();
    while let Some(i) = todo.pop() {
        let same_evr = index.names[&pkgs[i].name]
            .iter()
            .copied()
            .filter(|&q| pkgs[q].evr == pkgs[i].evr);
        for q in same_evr {
            if seen.insert(q) {
                todo.push(q);
            }
        }
        for d in requirement_atoms(&pkgs[i]) {
            let prov = index.providers(&d);
            if prov.is_empty() {
                missing.push((i, d));
            }
            for q in prov {
                if seen.insert(q) {
                    todo.push(q);
                }
            }
        }
    }
    (seen, missing)
}

/// The file requirements (paths) of the request's closure that nothing in primary provides: these need
/// filelists.xml.
pub fn missing_files(pkgs: &[Package], requests: &[String]) -> Result<HashSet<String>> {
    let index = Index::new(pkgs);
    let start: Vec<usize> = roots(pkgs, &index, requests)
        .unwrap_or_default()
        .into_iter()
        .flat_map(|(_, v, _)| v)
        .collect();
    let (_, missing) = closure(pkgs, &index, &start);
    Ok(missing
        .into_iter()
        .filter(|(_, d)| d.name.starts_with('/'))
        .map(|(_, d)| d.name)
        .collect())
}

/// The solver's answer.
#[derive(Debug)]
pub struct Resolution {
    /// Indexes (into the package list) of the packages to install, sorted.
    pub chosen: Vec<usize>,
    /// Those among them the request named.
    pub requested: HashSet<usize>,
    /// For each of those, the request (as written in the profile) that named it.
    pub request_of: HashMap<usize, String>,
}

/// Why a package of a [`Resolution`] is installed: the first link found walking from the requests.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct Why {
    /// `request`, `requires`, `recommends`, `supplements` or `lock-step` (the other arch of a package of
    /// the same name and version, libsolv's multilib rule).
    pub kind: &'static str,
    /// The package (NEVRA) whose dependency pulled it in; `None` for a request.
    pub by: Option<String>,
    /// The request as written, the requirement / recommendation / supplement as in the metadata, or the
    /// lock-step partner's NEVRA.
    pub dep: String,
}

/// Explains every chosen package: a breadth-first walk from the requested packages over the chosen set,
/// through requirements first (rich ones by the terms they ask for, not their conditions), then multilib lock-step partners, then weak
/// dependencies (Recommends of a reached package, Supplements naming one), so each package gets the
/// shortest chain of hard requirements that reaches it. A package nothing reaches (none should be) is
/// `kind = "unexplained"`.
pub fn explain(pkgs: &[Package], res: &Resolution) -> HashMap<usize, Why> {
    let chosen: HashSet<usize> = res.chosen.iter().copied().collect();
    let index = Index::new(pkgs);
    let mut why: HashMap<usize, Why> = HashMap::new();
    let mut order: Vec<usize> = Vec::new();
    for &i in &res.chosen {
        if let Some(spec) = res.request_of.get(&i) {
            why.insert(
                i,
                Why {
                    kind: "request",
                    by: None,
                    dep: spec.clone(),
                },
            );
            order.push(i);
        }
    }
    let reach = |why: &mut HashMap<usize, Why>,
                 order: &mut Vec<usize>,
                 q: usize,
                 kind: &'static str,
                 by: usize,
                 dep: String| {
        if chosen.contains(&q) && !why.contains_key(&q) {
            why.insert(
                q,
                Why {
                    kind,
                    by: Some(pkgs[by].nevra()),
                    dep,
                },
            );
            order.push(q);
            true
        } else {
            false
        }
    };
    loop {
        // Hard requirements and lock-step partners, breadth first.
        let mut next = 0;
        while next < order.len() {
            let i = order[next];
            next += 1;
            for r in &pkgs[i].requires {
                if is_rpmlib(&r.name) {
                    continue;
                }
                for d in wanted(r) {
                    for q in index.providers(&d) {
                        reach(&mut why, &mut order, q, "requires", i, d.to_string());
                    }
                }
            }
            for &q in &index.names[&pkgs[i].name] {
                if pkgs[q].evr == pkgs[i].evr {
                    reach(&mut why, &mut order, q, "lock-step", i, pkgs[i].nevra());
                }
            }
        }
        // One round of weak dependencies, then their requirements.
        let mut grew = false;
        for i in order.clone() {
            for d in &pkgs[i].recommends {
                for a in wanted(d) {
                    for q in index.providers(&a) {
                        grew |= reach(&mut why, &mut order, q, "recommends", i, d.to_string());
                    }
                }
            }
        }
        let reached: HashSet<usize> = order.iter().copied().collect();
        for &q in &res.chosen {
            if why.contains_key(&q) {
                continue;
            }
            let hit = pkgs[q].supplements.iter().find_map(|d| {
                index
                    .providers(d)
                    .into_iter()
                    .find(|p| reached.contains(p))
                    .map(|p| (p, d.to_string()))
            });
            if let Some((by, dep)) = hit {
                grew |= reach(&mut why, &mut order, q, "supplements", by, dep);
            }
        }
        if !grew {
            break;
        }
    }
    for &i in &res.chosen {
        why.entry(i).or_insert_with(|| Why {
            kind: "unexplained",
            by: None,
            dep: String::new(),
        });
    }
    why
}

#[derive(Clone, Copy)]
enum Cond {
    Never,
    Always,
    Id(ConditionId),
}

#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Package,
    Capability,
    Aux,
}

struct NameInfo {
    label: String,
    kind: Kind,
    solvables: Vec<SolvableId>,
}

struct SolvInfo {
    name: NameId,
    /// The package (for packages and capability records).
    pkg: Option<usize>,
    display: String,
    deps: KnownDependencies,
}

struct VsInfo {
    name: NameId,
    display: String,
    matching: HashSet<SolvableId>,
}

/// resolvo's view of the repositories.
struct Provider<'a> {
    pkgs: &'a [Package],
    policy: &'a ArchPolicy,
    choice: Policy<'a>,
    names: Vec<NameInfo>,
    solvables: Vec<SolvInfo>,
    vsets: Vec<VsInfo>,
    vset_keys: HashMap<(NameId, Vec<SolvableId>), VersionSetId>,
    unions: Vec<Vec<VersionSetId>>,
    conditions: Vec<Condition>,
    strings: Vec<String>,
    /// Package names, one per name and color (`foo.x86_64` and `foo.i686` may be installed together).
    pkg_names: HashMap<(String, Color), NameId>,
    cap_names: HashMap<String, NameId>,
    pkg_solvable: HashMap<usize, SolvableId>,
    /// Per capability name: (record solvable, package, provided range).
    records: HashMap<NameId, Vec<(SolvableId, usize, Range)>>,
}

impl<'a> Provider<'a> {
    fn add_name(&mut self, label: String, kind: Kind) -> NameId {
        let id = NameId::from_index(self.names.len());
        self.names.push(NameInfo {
            label,
            kind,
            solvables: Vec::new(),
        });
        id
    }

    fn add_solvable(&mut self, name: NameId, pkg: Option<usize>, display: String) -> SolvableId {
        let id = SolvableId::from_index(self.solvables.len());
        self.solvables.push(SolvInfo {
            name,
            pkg,
            display,
            deps: KnownDependencies::default(),
        });
        self.names[name.to_index()].solvables.push(id);
        id
    }

    fn vset(
        &mut self,
        name: NameId,
        mut matching: Vec<SolvableId>,
        display: String,
    ) -> VersionSetId {
        matching.sort();
        matching.dedup();
        let key = (name, matching);
        if let Some(&id) = self.vset_keys.get(&key) {
            return id;
        }
        let id = VersionSetId::from_index(self.vsets.len());
        self.vsets.push(VsInfo {
            name,
            display,
            matching: key.1.iter().copied().collect(),
        });
        self.vset_keys.insert(key, id);
        id
    }

    fn range_display(range: &Range) -> String {
        match range {
            None => String::new(),
            Some((op, evr)) => format!("{op} {evr}"),
        }
    }

    /// The capability records matching a simple dependency.
    fn dep_vset(&mut self, d: &Dep) -> VersionSetId {
        let name = self.cap_names[&d.name];
        let matching: Vec<SolvableId> = self
            .records
            .get(&name)
            .into_iter()
            .flatten()
            .filter(|(_, _, r)| overlaps(r, &d.range))
            .map(|(s, _, _)| *s)
            .collect();
        self.vset(name, matching, Self::range_display(&d.range))
    }

    /// A term as a disjunction of version sets.
    fn alternatives(&mut self, r: &Rich) -> Vec<VersionSetId> {
        match r {
            Rich::Dep(d) => vec![self.dep_vset(d)],
            Rich::Or(v) => v.iter().flat_map(|x| self.alternatives(x)).collect(),
            Rich::Unless(a, b, None) => {
                let mut v = self.alternatives(a);
                v.extend(self.alternatives(b));
                v
            }
            other => {
                // An auxiliary name with one solvable that carries the term's requirements.
                let label = format!("{other:?}");
                let name = self.add_name(label.clone(), Kind::Aux);
                let s = self.add_solvable(name, None, label);
                let reqs = self.requirements(other);
                self.solvables[s.to_index()].deps.requirements = reqs;
                vec![self.vset(name, vec![s], String::new())]
            }
        }
    }

    fn requirement(&mut self, alts: Vec<VersionSetId>) -> Requirement {
        if alts.len() == 1 {
            Requirement::Single(alts[0])
        } else {
            let id = VersionSetUnionId::from_index(self.unions.len());
            self.unions.push(alts);
            Requirement::Union(id)
        }
    }

    /// A condition term: a resolvo condition, `Never` when nothing can make it true, `Always` for forms
    /// we do not model as conditions (the requirement then applies unconditionally: a superset).
    fn condition(&mut self, r: &Rich) -> Cond {
        match r {
            Rich::Dep(d) => {
                // On the providing packages' names rather than the capability: a condition is "one of
                // this version set is installed", which resolvo encodes through the complement of the set
                // within its name, and that is only sound for names with one installed solvable.
                let cap = self.cap_names[&d.name];
                let mut by_name: BTreeMap<NameId, Vec<SolvableId>> = BTreeMap::new();
                let recs: Vec<usize> = self
                    .records
                    .get(&cap)
                    .into_iter()
                    .flatten()
                    .filter(|(_, _, r)| overlaps(r, &d.range))
                    .map(|(_, i, _)| *i)
                    .collect();
                for i in recs {
                    let s = self.pkg_solvable[&i];
                    by_name
                        .entry(self.solvables[s.to_index()].name)
                        .or_default()
                        .push(s);
                }
                let mut acc = Cond::Never;
                for (n, set) in by_name {
                    let vs = self.vset(n, set, format!("(provides {d})"));
                    let c = Cond::Id(self.add_condition(Condition::Requirement(vs)));
                    acc = self.combine(LogicalOperator::Or, acc, c);
                }
                acc
            }
            Rich::Or(v) | Rich::And(v) => {
                let op = if matches!(r, Rich::Or(_)) {
                    LogicalOperator::Or
                } else {
                    LogicalOperator::And
                };
                let mut it = v.iter();
                let first = it.next().map(|x| self.condition(x)).unwrap_or(Cond::Never);
                it.fold(first, |acc, x| {
                    let c = self.condition(x);
                    self.combine(op, acc, c)
                })
            }
            _ => Cond::Always,
        }
    }

    fn combine(&mut self, op: LogicalOperator, a: Cond, b: Cond) -> Cond {
        match (op, a, b) {
            (LogicalOperator::Or, Cond::Never, x) | (LogicalOperator::Or, x, Cond::Never) => x,
            (LogicalOperator::Or, Cond::Always, _) | (LogicalOperator::Or, _, Cond::Always) => {
                Cond::Always
            }
            (LogicalOperator::And, Cond::Never, _) | (LogicalOperator::And, _, Cond::Never) => {
                Cond::Never
            }
            (LogicalOperator::And, Cond::Always, x) | (LogicalOperator::And, x, Cond::Always) => x,
            (op, Cond::Id(a), Cond::Id(b)) => {
                Cond::Id(self.add_condition(Condition::Binary(op, a, b)))
            }
        }
    }

    fn add_condition(&mut self, c: Condition) -> ConditionId {
        let id = ConditionId::from_index(self.conditions.len());
        self.conditions.push(c);
        id
    }

    fn with_condition(
        &mut self,
        reqs: Vec<ConditionalRequirement>,
        cond: Cond,
    ) -> Vec<ConditionalRequirement> {
        let cond = match cond {
            Cond::Never => return Vec::new(),
            Cond::Always => return reqs,
            Cond::Id(c) => c,
        };
        reqs.into_iter()
            .map(|r| {
                let c = match r.condition {
                    None => cond,
                    Some(inner) => {
                        self.add_condition(Condition::Binary(LogicalOperator::And, cond, inner))
                    }
                };
                r.requirement.with_condition(c)
            })
            .collect()
    }

    /// A term as a conjunction of (conditional) requirements.
    fn requirements(&mut self, r: &Rich) -> Vec<ConditionalRequirement> {
        match r {
            Rich::And(v) | Rich::With(v) => v.iter().flat_map(|x| self.requirements(x)).collect(),
            Rich::Without(a, _) => self.requirements(a),
            Rich::If(a, b, otherwise) => {
                let reqs = self.requirements(a);
                let cond = self.condition(b);
                let mut out = self.with_condition(reqs, cond);
                if let Some(c) = otherwise {
                    // (a if b else c) also needs (b or c): when b is not installed, c is.
                    let alts = self.alternatives(&Rich::Or(vec![(**c).clone(), (**b).clone()]));
                    out.push(self.requirement(alts).into());
                }
                out
            }
            Rich::Unless(a, b, Some(c)) => {
                // (a unless b else c) = (a or b) and (c if b)
                let alts = self.alternatives(&Rich::Or(vec![(**a).clone(), (**b).clone()]));
                let mut out = vec![self.requirement(alts).into()];
                let reqs = self.requirements(c);
                let cond = self.condition(b);
                out.extend(self.with_condition(reqs, cond));
                out
            }
            other => {
                let alts = self.alternatives(other);
                vec![self.requirement(alts).into()]
            }
        }
    }

    /// The versions of package name `name` other than `except`.
    fn all_but(&mut self, name: NameId, except: &HashSet<SolvableId>, what: &str) -> VersionSetId {
        let keep: Vec<SolvableId> = self.names[name.to_index()]
            .solvables
            .iter()
            .copied()
            .filter(|s| !except.contains(s))
            .collect();
        self.vset(name, keep, format!("(not {what})"))
    }

    fn build(
        pkgs: &'a [Package],
        policy: &'a ArchPolicy,
        reach: &BTreeSet<usize>,
        index: &Index,
        root_caps: &[String],
    ) -> Provider<'a> {
        let mut p = Provider {
            pkgs,
            policy,
            choice: Policy::new(pkgs, policy),
            names: Vec::new(),
            solvables: Vec::new(),
            vsets: Vec::new(),
            vset_keys: HashMap::new(),
            unions: Vec::new(),
            conditions: Vec::new(),
            strings: Vec::new(),
            pkg_names: HashMap::new(),
            cap_names: HashMap::new(),
            pkg_solvable: HashMap::new(),
            records: HashMap::new(),
        };
        for &i in reach {
            let key = (pkgs[i].name.clone(), arch::color(&pkgs[i].arch));
            let name = match p.pkg_names.get(&key) {
                Some(&n) => n,
                None => {
                    let label = match key.1 {
                        Color::Bits64 => pkgs[i].name.clone(),
                        Color::Bits32 => format!("{} (32-bit)", pkgs[i].name),
                        Color::All => format!("{} (noarch)", pkgs[i].name),
                    };
                    let n = p.add_name(label, Kind::Package);
                    p.pkg_names.insert(key, n);
                    n
                }
            };
            let s = p.add_solvable(name, Some(i), pkgs[i].nevra());
            p.pkg_solvable.insert(i, s);
        }
        // Capability names for everything required, with one record per (package, provided range).
        let mut wanted: BTreeSet<String> = root_caps.iter().cloned().collect();
        for &i in reach {
            for d in requirement_atoms(&pkgs[i]) {
                wanted.insert(d.name);
            }
        }
        for cap in wanted {
            let name = p.add_name(cap.clone(), Kind::Capability);
            p.cap_names.insert(cap.clone(), name);
            let mut recs = Vec::new();
            for (i, range) in index.caps.get(&cap).into_iter().flatten() {
                if !reach.contains(i) {
                    continue;
                }
                let display = match range {
                    None => format!("{} (provides {cap})", pkgs[*i].nevra()),
                    Some((op, evr)) => format!("{} (provides {cap} {op} {evr})", pkgs[*i].nevra()),
                };
                let s = p.add_solvable(name, Some(*i), display);
                recs.push((s, *i, range.clone()));
            }
            p.records.insert(name, recs);
        }
        // A record requires its package.
        let record_list: Vec<(NameId, SolvableId, usize)> = p
            .records
            .iter()
            .flat_map(|(n, v)| v.iter().map(move |(s, i, _)| (*n, *s, *i)))
            .collect();
        let mut by_pkg: HashMap<usize, Vec<(NameId, SolvableId)>> = HashMap::new();
        for (n, s, i) in record_list {
            let ps = p.pkg_solvable[&i];
            let pname = p.solvables[ps.to_index()].name;
            let vs = p.vset(pname, vec![ps], format!("= {}", pkgs[i].evr));
            p.solvables[s.to_index()].deps.requirements = vec![Requirement::Single(vs).into()];
            by_pkg.entry(i).or_default().push((n, s));
        }
        // The best arch score per name (noarch aside).
        let mut best_score: HashMap<String, u32> = HashMap::new();
        for &i in reach {
            let a = policy.score(&pkgs[i].arch).unwrap_or(u32::MAX);
            let b = best_score.entry(pkgs[i].name.clone()).or_insert(u32::MAX);
            if a > 1 && a < *b {
                *b = a;
            }
        }
        for &i in reach {
            let me = p.pkg_solvable[&i];
            let me_name = p.solvables[me.to_index()].name;
            let mut reqs: Vec<ConditionalRequirement> = Vec::new();
            for d in &pkgs[i].requires {
                if is_rpmlib(&d.name) {
                    continue;
                }
                if rich::is_rich(&d.name) {
                    if let Ok(r) = rich::parse(&d.name) {
                        reqs.extend(p.requirements(&r));
                    }
                } else {
                    let vs = p.dep_vset(d);
                    reqs.push(Requirement::Single(vs).into());
                }
            }
            // The package brings its records along.
            let mut mine: HashMap<NameId, Vec<SolvableId>> = HashMap::new();
            for (n, s) in by_pkg.get(&i).into_iter().flatten() {
                mine.entry(*n).or_default().push(*s);
            }
            let mut mine: Vec<_> = mine.into_iter().collect();
            mine.sort();
            for (n, recs) in mine {
                let vs = p.vset(n, recs, format!("from {}", pkgs[i].nevra()));
                reqs.push(Requirement::Single(vs).into());
            }
            // Multilib lock-step (libsolv's `solver_addinfarchrules`, src/rules.c): a package of an arch worse
            // than the best its name has (i686 where x86_64 exists) needs the same version of the best arch
            // installed too, and cannot be installed at all when there is none.
            let my_score = p.policy.score(&pkgs[i].arch).unwrap_or(u32::MAX);
            if my_score > 1 && my_score != best_score[&pkgs[i].name] {
                let partners: Vec<SolvableId> = index.names[&pkgs[i].name]
                    .iter()
                    .copied()
                    .filter(|q| reach.contains(q) && pkgs[*q].evr == pkgs[i].evr)
                    // (a noarch partner would conflict with it: same name, every color)
                    .filter(|&q| p.policy.score(&pkgs[q].arch) == Some(best_score[&pkgs[i].name]))
                    .map(|q| p.pkg_solvable[&q])
                    .collect();
                let target = match partners.first() {
                    Some(s) => p.solvables[s.to_index()].name,
                    None => me_name,
                };
                let vs = p.vset(
                    target,
                    partners,
                    format!("(same version of the best arch as {})", pkgs[i].nevra()),
                );
                reqs.push(Requirement::Single(vs).into());
            }
            reqs.sort();
            reqs.dedup();
            // Conflicts and obsoletes forbid the packages they match (never the package itself).
            let mut forbidden: HashMap<NameId, (HashSet<SolvableId>, Vec<String>)> = HashMap::new();
            for c in &pkgs[i].conflicts {
                for q in index.providers(c) {
                    if q != i && reach.contains(&q) {
                        let s = p.pkg_solvable[&q];
                        let e = forbidden.entry(p.solvables[s.to_index()].name).or_default();
                        e.0.insert(s);
                        e.1.push(format!("conflicts {c}"));
                    }
                }
            }
            for o in &pkgs[i].obsoletes {
                for &q in reach {
                    let qp = &pkgs[q];
                    if q != i
                        && qp.name == o.name
                        && overlaps(&Some((Op::Eq, qp.evr.clone())), &o.range)
                    {
                        let s = p.pkg_solvable[&q];
                        let e = forbidden.entry(p.solvables[s.to_index()].name).or_default();
                        e.0.insert(s);
                        e.1.push(format!("obsoletes {o}"));
                    }
                }
            }
            // A noarch package and a same-name package of any arch exclude each other; 32-bit and 64-bit
            // ones of one name may be installed together (libsolv's implicit obsoletes with colors).
            let mine = arch::color(&pkgs[i].arch);
            for other in [Color::Bits64, Color::Bits32, Color::All] {
                if other == mine || (mine != Color::All && other != Color::All) {
                    continue;
                }
                if let Some(&n) = p.pkg_names.get(&(pkgs[i].name.clone(), other)) {
                    let e = forbidden.entry(n).or_default();
                    e.0.extend(p.names[n.to_index()].solvables.iter().copied());
                    e.1.push(format!(
                        "is {} (one of noarch and an arch)",
                        pkgs[i].nevra()
                    ));
                }
            }
            let mut constrains = Vec::new();
            let mut forbidden: Vec<_> = forbidden.into_iter().collect();
            forbidden.sort_by_key(|(n, _)| *n);
            for (n, (set, why)) in forbidden {
                constrains.push(p.all_but(n, &set, &why.join(", ")));
            }
            p.solvables[me.to_index()].deps = KnownDependencies {
                requirements: reqs,
                constrains,
            };
        }
        p
    }

    /// libsolv's order among packages of one name (`prune_to_best_arch`, then `prune_to_best_version`): the
    /// better arch class first (`noarch` is not compared with the others), then the newest.
    fn package_order(&self, a: usize, b: usize) -> std::cmp::Ordering {
        let (pa, pb) = (&self.pkgs[a], &self.pkgs[b]);
        let (sa, sb) = (self.arch_score(a), self.arch_score(b));
        if sa > 1 && sb > 1 && sa != sb {
            return sa.cmp(&sb);
        }
        pb.evr.newer_cmp(&pa.evr).then(sa.cmp(&sb))
    }

    fn arch_score(&self, i: usize) -> u32 {
        self.policy.score(&self.pkgs[i].arch).unwrap_or(u32::MAX)
    }

    /// Order in which a requirement's candidates are tried. Packages: [`Provider::package_order`].
    /// Capability records: libsolv's provider choice, [`Policy::order`].
    fn sort(&self, solvables: &mut [SolvableId]) {
        let pkg = |s: &SolvableId| self.solvables[s.to_index()].pkg;
        let Some(first) = solvables.first() else {
            return;
        };
        if self.names[self.solvables[first.to_index()].name.to_index()].kind == Kind::Package {
            solvables.sort_by(|a, b| match (pkg(a), pkg(b)) {
                (Some(x), Some(y)) => self.package_order(x, y),
                _ => a.cmp(b),
            });
            return;
        }
        // Capability records: their packages in libsolv's choice order, a package's records together.
        let mut cands: Vec<usize> = solvables.iter().filter_map(pkg).collect();
        cands.sort_unstable();
        cands.dedup();
        let rank: HashMap<usize, usize> = self
            .choice
            .order(&cands)
            .into_iter()
            .enumerate()
            .map(|(r, i)| (i, r))
            .collect();
        solvables.sort_by_key(|s| (pkg(s).map_or(usize::MAX, |i| rank[&i]), *s));
    }
}

impl Interner for Provider<'_> {
    type NameId = NameId;
    type SolvableId = SolvableId;

    fn display_solvable(&self, solvable: SolvableId) -> impl Display + '_ {
        &self.solvables[solvable.to_index()].display
    }

    fn display_name(&self, name: NameId) -> impl Display + '_ {
        &self.names[name.to_index()].label
    }

    fn display_version_set(&self, version_set: VersionSetId) -> impl Display + '_ {
        &self.vsets[version_set.to_index()].display
    }

    fn display_string(&self, string_id: StringId) -> impl Display + '_ {
        &self.strings[string_id.to_index()]
    }

    fn version_set_name(&self, version_set: VersionSetId) -> NameId {
        self.vsets[version_set.to_index()].name
    }

    fn solvable_name(&self, solvable: SolvableId) -> NameId {
        self.solvables[solvable.to_index()].name
    }

    fn version_sets_in_union(
        &self,
        version_set_union: VersionSetUnionId,
    ) -> impl Iterator<Item = VersionSetId> {
        self.unions[version_set_union.to_index()].iter().copied()
    }

    fn resolve_condition(&self, condition: ConditionId) -> Condition {
        self.conditions[condition.to_index()].clone()
    }
}

impl DependencyProvider for Provider<'_> {
    async fn filter_candidates(
        &self,
        candidates: &[SolvableId],
        version_set: VersionSetId,
        inverse: bool,
    ) -> Vec<SolvableId> {
        let m = &self.vsets[version_set.to_index()].matching;
        candidates
            .iter()
            .copied()
            .filter(|c| m.contains(c) != inverse)
            .collect()
    }

    async fn get_candidates(&self, name: NameId) -> Option<Candidates<SolvableId>> {
        let n = &self.names[name.to_index()];
        Some(Candidates {
            candidates: n.solvables.clone(),
            hint_dependencies_available: HintDependenciesAvailable::All,
            allow_multiple: n.kind == Kind::Capability,
            ..Default::default()
        })
    }

    async fn sort_candidates(&self, _solver: &SolverCache<Self>, solvables: &mut [SolvableId]) {
        self.sort(solvables);
    }

    async fn get_dependencies(&self, solvable: SolvableId) -> Dependencies {
        Dependencies::Known(self.solvables[solvable.to_index()].deps.clone())
    }
}

/// A weak dependency taken on as a requirement once a solution has it unmet: a `Recommends:` of a chosen
/// package, or a package whose `Supplements:` the chosen packages meet.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Weak {
    Dep(Dep),
    Package(usize),
}

/// Whether the packages in `set` meet `r` (a rich dependency evaluated as a boolean).
fn holds(r: &Rich, index: &Index, set: &HashSet<usize>) -> bool {
    match r {
        Rich::Dep(d) => index.providers(d).iter().any(|q| set.contains(q)),
        Rich::And(v) | Rich::With(v) => v.iter().all(|x| holds(x, index, set)),
        Rich::Or(v) => v.iter().any(|x| holds(x, index, set)),
        Rich::Without(a, b) => holds(a, index, set) && !holds(b, index, set),
        Rich::If(a, b, c) => {
            if holds(b, index, set) {
                holds(a, index, set)
            } else {
                c.as_ref().is_none_or(|c| holds(c, index, set))
            }
        }
        Rich::Unless(a, b, c) => {
            if holds(b, index, set) {
                c.as_ref().is_none_or(|c| holds(c, index, set))
            } else {
                holds(a, index, set)
            }
        }
    }
}

fn dep_holds(d: &Dep, index: &Index, set: &HashSet<usize>) -> bool {
    if rich::is_rich(&d.name) {
        match rich::parse(&d.name) {
            Ok(r) => holds(&r, index, set),
            Err(_) => true,
        }
    } else {
        index.providers(d).iter().any(|q| set.contains(q))
    }
}

/// The weak dependencies the solution `chosen` leaves unmet, as libsolv's `resolve_weak` (src/solver.c)
/// collects them: the Recommends of installed packages that no installed package meets and something
/// provides; the packages not installed whose Supplements the installed ones meet (the best arch and
/// newest of each name, none of a name already installed).
fn weak_pending(
    pkgs: &[Package],
    index: &Index,
    arch: &ArchPolicy,
    chosen: &[usize],
    known: &HashSet<Weak>,
) -> Vec<Weak> {
    let set: HashSet<usize> = chosen.iter().copied().collect();
    let mut out: Vec<Weak> = Vec::new();
    for &i in chosen {
        for d in &pkgs[i].recommends {
            if is_rpmlib(&d.name) || dep_holds(d, index, &set) {
                continue;
            }
            if !rich::is_rich(&d.name) && index.providers(d).is_empty() {
                continue;
            }
            let w = Weak::Dep(d.clone());
            if !known.contains(&w) && !out.contains(&w) {
                out.push(w);
            }
        }
    }
    let installed_names: HashSet<&str> = chosen.iter().map(|&i| pkgs[i].name.as_str()).collect();
    let mut best: BTreeMap<&str, usize> = BTreeMap::new();
    for (q, p) in pkgs.iter().enumerate() {
        if p.supplements.is_empty() || installed_names.contains(p.name.as_str()) {
            continue;
        }
        if !p.supplements.iter().any(|d| dep_holds(d, index, &set)) {
            continue;
        }
        let score = |i: usize| arch.score(&pkgs[i].arch).unwrap_or(u32::MAX);
        let e = best.entry(p.name.as_str()).or_insert(q);
        let (sa, sb) = (score(q), score(*e));
        let better = if sa > 1 && sb > 1 && sa != sb {
            sa < sb
        } else {
            p.evr.newer_cmp(&pkgs[*e].evr).is_gt()
        };
        if better {
            *e = q;
        }
    }
    for q in best.into_values() {
        let w = Weak::Package(q);
        if !known.contains(&w) {
            out.push(w);
        }
    }
    out
}

/// Resolves `requests` against `pkgs` (already limited to the arches `policy` accepts): the set dnf would
/// install on an empty root, weak dependencies included (dnf's default `install_weak_deps=True`). An
/// unresolvable request is an error that names the package and the requirement.
///
/// Weak dependencies are added the way libsolv's `resolve_weak` does once every requirement is met: the
/// unmet Recommends of the installed packages and the packages that supplement them are installed when
/// that still leaves a solution (all at once if possible, else one by one, each kept only if the problem
/// stays solvable), and the new packages' own weak dependencies are looked at in the next round.
pub fn resolve(pkgs: &[Package], requests: &[String], policy: &ArchPolicy) -> Result<Resolution> {
    let index = Index::new(pkgs);
    let roots = roots(pkgs, &index, requests)?;
    let mut weak: Vec<Weak> = Vec::new();
    let mut known: HashSet<Weak> = HashSet::new();
    let mut chosen = solve_once(pkgs, policy, &index, &roots, requests, &weak)?;
    loop {
        let pending = weak_pending(pkgs, &index, policy, &chosen, &known);
        if pending.is_empty() {
            break;
        }
        known.extend(pending.iter().cloned());
        let mut trial = weak.clone();
        trial.extend(pending.iter().cloned());
        if let Ok(c) = solve_once(pkgs, policy, &index, &roots, requests, &trial) {
            weak = trial;
            chosen = c;
            continue;
        }
        for w in pending {
            let mut trial = weak.clone();
            trial.push(w.clone());
            match solve_once(pkgs, policy, &index, &roots, requests, &trial) {
                Ok(c) => {
                    weak = trial;
                    chosen = c;
                }
                Err(_) => {
                    log::info!("not installing weak dependency {w:?}: it cannot be installed")
                }
            }
        }
    }
    let mut requested = HashSet::new();
    let mut request_of = HashMap::new();
    for (spec, (name, matches, by_name)) in requests.iter().zip(&roots) {
        for &i in &chosen {
            let hit = if *by_name {
                &pkgs[i].name == name
            } else {
                matches.contains(&i)
            };
            if hit {
                requested.insert(i);
                request_of.entry(i).or_insert_with(|| spec.clone());
            }
        }
    }
    Ok(Resolution {
        chosen,
        requested,
        request_of,
    })
}

/// One solver run: the requests plus the weak dependencies taken on as requirements. Returns the chosen
/// packages (sorted) or the message that explains why there is no solution.
fn solve_once(
    pkgs: &[Package],
    policy: &ArchPolicy,
    index: &Index,
    roots: &[(String, Vec<usize>, bool)],
    requests: &[String],
    weak: &[Weak],
) -> std::result::Result<Vec<usize>, super::Error> {
    let mut start: Vec<usize> = roots
        .iter()
        .flat_map(|(_, v, _)| v.iter().copied())
        .collect();
    let mut root_caps: Vec<String> = roots
        .iter()
        .filter(|(_, _, by_name)| !by_name)
        .map(|(name, _, _)| name.clone())
        .collect();
    let mut weak_rich: Vec<Option<Rich>> = Vec::new();
    for w in weak {
        let mut rich_term = None;
        match w {
            Weak::Package(q) => start.push(*q),
            Weak::Dep(d) => {
                let mut ds = Vec::new();
                if rich::is_rich(&d.name) {
                    if let Ok(r) = rich::parse(&d.name) {
                        atoms(&r, &mut ds);
                        rich_term = Some(r);
                    }
                } else {
                    ds.push(d.clone());
                }
                for a in ds {
                    start.extend(index.providers(&a));
                    root_caps.push(a.name);
                }
            }
        }
        weak_rich.push(rich_term);
    }
    let (reach, missing) = closure(pkgs, index, &start);
    let mut provider = Provider::build(pkgs, policy, &reach, index, &root_caps);
    let mut root_reqs: Vec<ConditionalRequirement> = Vec::new();
    for (spec, (name, matches, by_name)) in requests.iter().zip(roots) {
        let req = if *by_name {
            // One of the matching packages, of any arch: the group (name and color) of the package
            // libsolv's policy picks first (best arch, then newest), so `foo` is foo.x86_64, not foo.i686.
            let mut ms = matches.clone();
            ms.sort_by(|&a, &b| provider.package_order(a, b));
            let mut groups: Vec<(NameId, Vec<SolvableId>)> = Vec::new();
            for i in ms {
                let s = provider.pkg_solvable[&i];
                let n = provider.solvables[s.to_index()].name;
                match groups.iter_mut().find(|(g, _)| *g == n) {
                    Some((_, v)) => v.push(s),
                    None => groups.push((n, vec![s])),
                }
            }
            let alts = groups
                .into_iter()
                .map(|(n, m)| provider.vset(n, m, format!("(requested as {spec})")))
                .collect();
            provider.requirement(alts)
        } else {
            Requirement::Single(provider.dep_vset(&Dep {
                name: name.clone(),
                range: None,
            }))
        };
        root_reqs.push(req.into());
    }
    for (w, r) in weak.iter().zip(weak_rich) {
        match (w, r) {
            (Weak::Package(q), _) => {
                let s = provider.pkg_solvable[q];
                let n = provider.solvables[s.to_index()].name;
                let vs = provider.vset(n, vec![s], "(supplementing)".to_string());
                root_reqs.push(Requirement::Single(vs).into());
            }
            (Weak::Dep(_), Some(r)) => root_reqs.extend(provider.requirements(&r)),
            (Weak::Dep(d), None) => {
                if rich::is_rich(&d.name) {
                    continue;
                }
                let vs = provider.dep_vset(d);
                root_reqs.push(Requirement::Single(vs).into());
            }
        }
    }
    let mut solver = Solver::new(provider);
    match solver.solve(Problem::new().requirements(root_reqs)) {
        Ok(solution) => {
            let p = solver.provider();
            let mut chosen: Vec<usize> = solution
                .iter()
                .filter(|s| {
                    p.names[p.solvables[s.to_index()].name.to_index()].kind == Kind::Package
                })
                .filter_map(|s| p.solvables[s.to_index()].pkg)
                .collect();
            chosen.sort();
            chosen.dedup();
            Ok(chosen)
        }
        Err(UnsolvableOrCancelled::Unsolvable(conflict)) => {
            let explanation = conflict.display_user_friendly(&solver).to_string();
            let mut msg = format!("cannot resolve the packages {}:\n", requests.join(", "));
            let mut lines: Vec<String> = missing
                .iter()
                .map(|(i, d)| {
                    format!(
                        "  {} requires {d}, which no package in the repos provides",
                        pkgs[*i].nevra()
                    )
                })
                .collect();
            lines.sort();
            lines.dedup();
            for l in lines {
                msg.push_str(&l);
                msg.push('\n');
            }
            msg.push_str(explanation.trim_end());
            Err(super::Error::Unsolvable { explanation: msg })
        }
        Err(UnsolvableOrCancelled::Cancelled(_)) => Err(super::Error::Cancelled),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `name-version[-release].arch` with `requires`/`provides` written like spec file lines.
    fn pkg(nevra: &str, requires: &[&str], provides: &[&str]) -> Package {
        let (nvr, arch) = nevra.rsplit_once('.').unwrap();
        let (nv, rel) = nvr.rsplit_once('-').unwrap();
        let (name, ver) = nv.rsplit_once('-').unwrap();
        let dep = |s: &&str| {
            if rich::is_rich(s) {
                return Dep {
                    name: s.to_string(),
                    range: None,
                };
            }
            let parts: Vec<&str> = s.split_whitespace().collect();
            Dep {
                name: parts[0].to_string(),
                range: (parts.len() == 3).then(|| {
                    (
                        Op::from_symbol(parts[1]).unwrap(),
                        Evr::parse(parts[2]).unwrap(),
                    )
                }),
            }
        };
        let evr = Evr::parse(&format!("{ver}-{rel}")).unwrap();
        let mut provides: Vec<Dep> = provides.iter().map(dep).collect();
        provides.push(Dep {
            name: name.to_string(),
            range: Some((Op::Eq, evr.clone())),
        });
        Package {
            name: name.to_string(),
            arch: arch.to_string(),
            evr,
            href: format!("{nevra}.rpm"),
            requires: requires.iter().map(dep).collect(),
            provides,
            ..Default::default()
        }
    }

    fn solve(pkgs: &[Package], req: &[&str]) -> Result<Vec<String>> {
        let r = resolve(
            pkgs,
            &req.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
            &ArchPolicy::new("x86_64"),
        )?;
        Ok(r.chosen.iter().map(|&i| pkgs[i].nevra()).collect())
    }

    #[test]
    fn conflicting_ranges_pick_the_version_both_accept() {
        let pkgs = vec![
            pkg("kubelet-1.30.0-0.x86_64", &["kubernetes-cni < 1.5.0"], &[]),
            pkg(
                "kubeadm-1.30.0-0.x86_64",
                &["kubernetes-cni >= 1.4.0", "kubelet"],
                &[],
            ),
            pkg("kubernetes-cni-1.3.0-0.x86_64", &[], &[]),
            pkg("kubernetes-cni-1.4.0-0.x86_64", &[], &[]),
            pkg("kubernetes-cni-1.5.1-0.x86_64", &["extra"], &[]),
            pkg("extra-1-1.x86_64", &[], &[]),
        ];
        let got = solve(&pkgs, &["kubeadm"]).unwrap();
        assert_eq!(
            got,
            [
                "kubelet-1.30.0-0.x86_64",
                "kubeadm-1.30.0-0.x86_64",
                "kubernetes-cni-1.4.0-0.x86_64"
            ]
        );
    }

    #[test]
    fn a_chosen_provider_is_reused_and_or_takes_one() {
        let pkgs = vec![
            pkg(
                "app-1-1.x86_64",
                &["runtime", "(ebtables-legacy or iptables)"],
                &[],
            ),
            pkg("lib-1-1.x86_64", &["iptables"], &[]),
            // two providers of "runtime": "aaa-runtime" sorts first, but containerd is requested anyway
            pkg("aaa-runtime-1-1.x86_64", &[], &["runtime"]),
            pkg("containerd-1-1.x86_64", &[], &["runtime = 2"]),
            pkg("ebtables-legacy-1-1.x86_64", &[], &[]),
            pkg("iptables-1-1.x86_64", &[], &[]),
        ];
        assert_eq!(
            solve(&pkgs, &["app", "containerd"]).unwrap(),
            [
                "app-1-1.x86_64",
                "containerd-1-1.x86_64",
                "ebtables-legacy-1-1.x86_64"
            ]
        );
        assert_eq!(
            solve(&pkgs, &["app", "containerd", "lib"]).unwrap(),
            [
                "app-1-1.x86_64",
                "lib-1-1.x86_64",
                "containerd-1-1.x86_64",
                "iptables-1-1.x86_64"
            ]
        );
        assert_eq!(
            solve(&pkgs, &["app"]).unwrap(),
            [
                "app-1-1.x86_64",
                "aaa-runtime-1-1.x86_64",
                "ebtables-legacy-1-1.x86_64"
            ]
        );
    }

    #[test]
    fn conflicts_and_obsoletes_steer_the_choice() {
        let pkgs = vec![
            pkg("app-1-1.x86_64", &["runtime"], &[]),
            pkg("podman-1-1.x86_64", &[], &[]),
            pkg("aaa-runtime-1-1.x86_64", &[], &["runtime"]),
            pkg("containerd-1-1.x86_64", &[], &["runtime"]),
        ];
        let mut p = pkgs.clone();
        p[2].conflicts.push(Dep {
            name: "podman".into(),
            range: None,
        });
        assert_eq!(
            solve(&p, &["app", "podman"]).unwrap(),
            [
                "app-1-1.x86_64",
                "podman-1-1.x86_64",
                "containerd-1-1.x86_64"
            ]
        );
        let mut p = pkgs.clone();
        p[1].obsoletes.push(Dep {
            name: "aaa-runtime".into(),
            range: Some((Op::Lt, Evr::parse("2").unwrap())),
        });
        assert_eq!(
            solve(&p, &["app", "podman"]).unwrap(),
            [
                "app-1-1.x86_64",
                "podman-1-1.x86_64",
                "containerd-1-1.x86_64"
            ]
        );
    }

    #[test]
    fn conditional_rich_requirement() {
        let pkgs = vec![
            pkg("app-1-1.x86_64", &["(app-selinux if selinux-policy)"], &[]),
            pkg("app-selinux-1-1.noarch", &[], &[]),
            pkg("selinux-policy-1-1.noarch", &[], &[]),
        ];
        assert_eq!(solve(&pkgs, &["app"]).unwrap(), ["app-1-1.x86_64"]);
        let mut never = pkgs.clone();
        never[0].requires[0].name = "(app-selinux if no-such-policy)".into();
        assert_eq!(solve(&never, &["app"]).unwrap(), ["app-1-1.x86_64"]);
        assert_eq!(
            solve(&pkgs, &["app", "selinux-policy"]).unwrap(),
            [
                "app-1-1.x86_64",
                "app-selinux-1-1.noarch",
                "selinux-policy-1-1.noarch"
            ]
        );
    }

    /// A missing epoch is 0 in dependency matching: `X < 1:0` takes X 2.10, `Y >= 2:2.74` refuses Y 3.0.0.
    #[test]
    fn epochs_in_requirements() {
        let pkgs = vec![
            pkg("app-1-1.x86_64", &["X < 1:0", "Y >= 2:2.74"], &[]),
            pkg("X-2.10-1.x86_64", &[], &[]),
            pkg("X-1:0.1-1.x86_64", &[], &[]),
            pkg("Y-3.0.0-1.x86_64", &[], &[]),
            pkg("Y-2:2.74-1.x86_64", &[], &[]),
        ];
        assert_eq!(
            solve(&pkgs, &["app"]).unwrap(),
            ["app-1-1.x86_64", "X-2.10-1.x86_64", "Y-2:2.74-1.x86_64"]
        );
    }

    /// x86_64 installs i686 packages when a 32-bit soname is required, in lock-step with the x86_64 package
    /// of the same name and version when there is one; a plain name request and a capability both arches
    /// provide take x86_64.
    #[test]
    fn multilib() {
        let pkgs = vec![
            pkg("app32-1-1.x86_64", &["libfoo.so.9"], &[]),
            pkg("app64-1-1.x86_64", &["libfoo.so.9()(64bit)"], &[]),
            pkg("appfoo-1-1.x86_64", &["foo-tools"], &[]),
            pkg(
                "libfoo-9-1.x86_64",
                &[],
                &["libfoo.so.9()(64bit)", "foo-tools"],
            ),
            pkg("libfoo-9-1.i686", &[], &["libfoo.so.9", "foo-tools"]),
            pkg("bar-1-1.x86_64", &[], &[]),
            pkg("bar-2-1.noarch", &[], &[]),
            pkg("baz-2-1.i686", &[], &[]),
            pkg("baz-1-1.x86_64", &[], &[]),
        ];
        assert_eq!(
            solve(&pkgs, &["app32"]).unwrap(),
            ["app32-1-1.x86_64", "libfoo-9-1.x86_64", "libfoo-9-1.i686"]
        );
        let mut only32 = pkgs.clone();
        only32.remove(3);
        assert_eq!(
            solve(&only32, &["app32"]).unwrap(),
            ["app32-1-1.x86_64", "libfoo-9-1.i686"]
        );
        assert_eq!(
            solve(&pkgs, &["app32", "app64"]).unwrap(),
            [
                "app32-1-1.x86_64",
                "app64-1-1.x86_64",
                "libfoo-9-1.x86_64",
                "libfoo-9-1.i686"
            ]
        );
        assert_eq!(solve(&pkgs, &["libfoo"]).unwrap(), ["libfoo-9-1.x86_64"]);
        assert_eq!(
            solve(&pkgs, &["appfoo"]).unwrap(),
            ["appfoo-1-1.x86_64", "libfoo-9-1.x86_64"]
        );
        // noarch is not an arch class: the newest wins; a better arch beats a newer worse one, which is
        // taken when asked for (the x86_64 one is then not among the packages considered, as in libsolv).
        assert_eq!(solve(&pkgs, &["bar"]).unwrap(), ["bar-2-1.noarch"]);
        assert_eq!(solve(&pkgs, &["baz"]).unwrap(), ["baz-1-1.x86_64"]);
        assert_eq!(solve(&pkgs, &["baz-2"]).unwrap(), ["baz-2-1.i686"]);
    }

    /// Recommends are installed when they can be (a provider chosen like for a requirement, the ones that
    /// conflict or that nothing provides left out), and so are packages whose Supplements are met.
    #[test]
    fn weak_dependencies() {
        let weak = |s: &str| Dep {
            name: s.to_string(),
            range: None,
        };
        let mut pkgs = vec![
            pkg("app-1-1.x86_64", &[], &[]),
            pkg("rec-a-1-1.x86_64", &["rec-dep"], &[]),
            pkg("rec-dep-1-1.x86_64", &[], &[]),
            pkg("zz-rec-1-1.noarch", &[], &["rec-cap"]),
            pkg("aa-rec-1-1.noarch", &[], &["rec-cap"]),
            pkg("rec-bad-1-1.x86_64", &[], &[]),
            pkg("rec-if-1-1.noarch", &[], &[]),
            pkg("supp-1-1.noarch", &[], &[]),
            pkg("supp-rich-1-1.noarch", &[], &[]),
        ];
        pkgs[0].recommends = [
            "rec-a",
            "rec-cap",
            "rec-bad",
            "rec-missing",
            "(rec-if if rec-a)",
        ]
        .map(weak)
        .to_vec();
        pkgs[5].conflicts.push(weak("app"));
        pkgs[7].supplements.push(weak("app"));
        pkgs[8].supplements.push(weak("(app and not-there)"));
        assert_eq!(
            solve(&pkgs, &["app"]).unwrap(),
            [
                "app-1-1.x86_64",
                "rec-a-1-1.x86_64",
                "rec-dep-1-1.x86_64",
                "aa-rec-1-1.noarch",
                "rec-if-1-1.noarch",
                "supp-1-1.noarch"
            ]
        );
    }

    #[test]
    fn request_forms() {
        let pkgs = vec![
            pkg("kubelet-1.11.1-0.x86_64", &[], &[]),
            pkg("kubelet-1.11.1-1.x86_64", &[], &[]),
            pkg("kubelet-1.30.0-0.x86_64", &[], &[]),
            pkg(
                "docker-ce-17.12.0.ce-0.2.rc2.el7.x86_64",
                &[],
                &["docker-engine"],
            ),
        ];
        assert_eq!(
            solve(&pkgs, &["kubelet"]).unwrap(),
            ["kubelet-1.30.0-0.x86_64"]
        );
        assert_eq!(
            solve(&pkgs, &["kubelet-1.11.1"]).unwrap(),
            ["kubelet-1.11.1-1.x86_64"]
        );
        assert_eq!(
            solve(&pkgs, &["kubelet-1.11.1-0"]).unwrap(),
            ["kubelet-1.11.1-0.x86_64"]
        );
        assert_eq!(
            solve(&pkgs, &["docker-ce-17.12.0.ce-0.2.rc2.el7"]).unwrap(),
            ["docker-ce-17.12.0.ce-0.2.rc2.el7.x86_64"]
        );
        assert_eq!(
            solve(&pkgs, &["docker-engine"]).unwrap(),
            ["docker-ce-17.12.0.ce-0.2.rc2.el7.x86_64"]
        );
        let mut pkgs = pkgs;
        pkgs.push(pkg("epochy-1:2.0-1.x86_64", &[], &[]));
        for spec in [
            "epochy-2.0-1",
            "epochy-1:2.0-1",
            "epochy-2.0",
            "epochy-1:2.0",
        ] {
            assert_eq!(
                solve(&pkgs, &[spec]).unwrap(),
                ["epochy-1:2.0-1.x86_64"],
                "{spec}"
            );
        }
        assert!(solve(&pkgs, &["epochy-2:2.0-1"]).is_err());
        let e = solve(&pkgs, &["kubelet-9.9"]).unwrap_err().to_string();
        assert!(e.contains("'kubelet-9.9'"), "{e}");
    }

    #[test]
    fn unresolvable_names_package_and_requirement() {
        let pkgs = vec![
            pkg("app-1-1.x86_64", &["lib"], &[]),
            pkg("lib-1-1.x86_64", &["nothing-provides-me >= 2"], &[]),
        ];
        let e = format!("{:#}", solve(&pkgs, &["app"]).unwrap_err());
        assert!(
            e.contains("lib-1-1.x86_64 requires nothing-provides-me >= 2"),
            "{e}"
        );
    }

    /// A distribution-sized pool (6000 packages, sonames, versioned requires, file requires) resolves
    /// quickly: the closure walk and the encoding are linear enough for BaseOS + AppStream.
    #[test]
    fn distribution_sized_pool() {
        let mut pkgs = Vec::new();
        let mut seed = 42u64;
        let mut rnd = |n: u64| {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (seed >> 33) % n
        };
        for n in 0..2000u64 {
            for v in 1..=3u64 {
                let mut reqs: Vec<String> = Vec::new();
                for _ in 0..6 {
                    if n < 10 {
                        break;
                    }
                    let dep = rnd(n);
                    match rnd(3) {
                        0 => reqs.push(format!("p{dep} >= 2")),
                        1 => reqs.push(format!("libp{dep}.so.{v}()(64bit)")),
                        _ => reqs.push(format!("/usr/bin/p{dep}")),
                    }
                }
                let refs: Vec<&str> = reqs.iter().map(String::as_str).collect();
                let so = format!("libp{n}.so.{v}()(64bit)");
                let mut p = pkg(&format!("p{n}-{v}-1.x86_64"), &refs, &[so.as_str()]);
                p.files.push(format!("/usr/bin/p{n}"));
                pkgs.push(p);
            }
        }
        let started = std::time::Instant::now();
        let want: Vec<String> = (1980..2000).map(|n| format!("p{n}")).collect();
        let r = resolve(&pkgs, &want, &ArchPolicy::new("x86_64")).unwrap();
        assert!(r.chosen.len() > 20);
        let names: HashSet<&str> = r.chosen.iter().map(|&i| pkgs[i].name.as_str()).collect();
        assert_eq!(names.len(), r.chosen.len(), "one version per name");
        eprintln!(
            "{} packages chosen in {:?}",
            r.chosen.len(),
            started.elapsed()
        );
        assert!(started.elapsed() < std::time::Duration::from_secs(60));
    }
}
