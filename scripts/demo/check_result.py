#!/usr/bin/env python3
"""Checks a demo run's result.json: what `make demo` must show, as assertions."""
import json
import sys

r = json.load(open(sys.argv[1]))
hostile = "--hostile" in sys.argv[2:]
nodes = r["nodes"]
problems = []
if sorted(n["role"] for n in nodes) != ["master", "master", "master", "worker", "worker"]:
    problems.append(f"expected 3 masters and 2 workers, got {[n['role'] for n in nodes]}")
for n in nodes:
    if n["phase"] != "done":
        problems.append(f"{n['name']} ended in phase {n['phase']}")
inits = [n["name"] for n in nodes if n.get("decision") == "init"]
if len(inits) != 1:
    problems.append(f"exactly one kubeadm init expected, got {inits}")
if not r.get("vip_before") or r.get("vip_before") == r.get("vip_after"):
    problems.append(f"the VIP did not move: {r.get('vip_before')} -> {r.get('vip_after')}")
if not (0 < float(r.get("failover_seconds", 0)) < 30):
    problems.append(f"failover time {r.get('failover_seconds')}")
rb = r.get("rebuild", {})
if not rb.get("ok") or rb.get("decision") != "join":
    problems.append(f"rebuild drill: {rb}")
if len(r.get("etcd_members", [])) != 3:
    problems.append(f"etcd members after the rebuild: {r.get('etcd_members')}")
if sorted(r.get("registered_nodes", [])) != sorted(n["name"] for n in nodes):
    problems.append(f"registered nodes {r.get('registered_nodes')}")
not_ready = [k for k, v in r.get("node_status", {}).items() if v != "Ready"]
if not_ready:
    problems.append(f"Nodes not Ready (kubectl get nodes through the VIP): {not_ready}")
if r.get("kubeadm_inits") != 1 and not hostile:
    problems.append(f"kubeadm init ran {r.get('kubeadm_inits')} times in the cluster (agents' logs), want 1")
if r.get("image_pulls") != 0:
    problems.append(f"the nodes' containerd pulled {r.get('image_pulls')} images; everything must come from the bundle")
k = r.get("kubernetes", {})
if not k.get("server") or k.get("server") != k.get("kubeadm"):
    problems.append(f"the API server through the VIP reports {k.get('server')}, kubeadm is {k.get('kubeadm')}")
# The fleet as kubeha serve saw it: every lab node was network-installed from it (its installer reported
# `installed`), its agent reported every phase up to done, and the masters' reports say who holds the VIP and
# which etcd members there are.
s = r.get("serve") or {}
f = s.get("fleet") or {}
rows = {row["name"]: row for row in f.get("nodes", [])}
masters_ = sorted(n["name"] for n in nodes if n["role"] == "master")
if not f:
    problems.append("no fleet from kubeha serve in result.json: the demo must install through kubeha serve")
else:
    installs = {}
    for e in f.get("timeline", []):
        if e["what"] == "installed ok":
            installs[e["node"]] = installs.get(e["node"], 0) + 1
    for n in nodes:
        row = rows.get(n["name"])
        if not row:
            problems.append(f"kubeha serve has no row for {n['name']}")
            continue
        # (Its "last error" column keeps what a failed run said, e.g. a killed kubeadm's, after the node recovered.)
        if (row.get("phase"), row.get("state"), row.get("installed")) != ("done", "ok", True):
            problems.append(f"kubeha serve's row for {n['name']}: phase {row.get('phase')}/{row.get('state')}, "
                            f"installed {row.get('installed')}, last error {row.get('error')}: want done/ok, installed")
        want = 2 if n["name"] == rb.get("node") else 1
        if installs.get(n["name"]) != want:
            problems.append(f"{n['name']}: {installs.get(n['name'])} installs reported to kubeha serve, want {want}")
        if n["role"] == "master":
            want_dec = rb.get("decision") if n["name"] == rb.get("node") else n.get("decision")
            if row.get("decision") != want_dec:
                problems.append(f"kubeha serve says {n['name']} decided {row.get('decision')}, the node {want_dec}")
    formed = (s.get("fleet_formed") or {}).get("vip_holder")
    if formed != r.get("vip_before"):
        problems.append(f"kubeha serve's VIP holder after formation: {formed}, the VIP was on {r.get('vip_before')}")
    if sorted((f.get("etcd_members") or {}).get("members", [])) != masters_:
        problems.append(f"kubeha serve's etcd members: {f.get('etcd_members')}, want {masters_}")
    if f.get("unknown"):
        problems.append(f"kubeha serve saw unknown machines: {f.get('unknown')}")
if hostile:
    h = r.get("hostile") or {}
    masters = [n["name"] for n in nodes if n["role"] == "master"]
    ik = h.get("kubeadm_killed_in_init") or {}
    # Before the kill only the designated master ran init (once: killed); after the operator re-designated the
    # second master, it alone initialized, and the first (stored decision "init", kubeadm's leftovers) joined.
    # The second master's first init was killed too (before its etcd answered), so it ran init twice; a worker's
    # join was killed in its TLS bootstrap and the worker still ended Ready (checked above), after a restart.
    workers = [n["name"] for n in nodes if n["role"] == "worker"]
    if ik.get("init_runs_at_kill") != {masters[0]: 1} or ik.get("stored_decision") != "init" \
            or ik.get("init_runs") != {masters[0]: 1, masters[1]: 2} or r.get("kubeadm_inits") != 3 \
            or {k: (ik.get("init_killed_before_etcd") or {}).get(k) for k in ("node", "verb", "etcd_manifest", "etcd_answered")} \
            != {"node": masters[1], "verb": "init", "etcd_manifest": True, "etcd_answered": False} \
            or {k: (ik.get("worker_join_killed") or {}).get(k) for k in ("node", "verb", "bootstrap_kubelet_conf")} \
            != {"node": workers[0], "verb": "join", "bootstrap_kubelet_conf": True} \
            or not (ik.get("restarts") or {}).get(workers[0]) \
            or ik.get("decisions") != {masters[0]: "join", masters[1]: "init", masters[2]: "join"}:
        problems.append(f"kubeadm init killed on {masters[0]}, then {masters[1]} re-designated: want one init by "
                        f"{masters[0]} before the kill, two by {masters[1]} after (the first killed before etcd), "
                        f"{masters[0]} joined, {workers[:1]} restarted after its killed join: {ik}, "
                        f"{r.get('kubeadm_inits')} inits in the logs")
    two = h.get("two_bootstraps") or {}
    if not two.get("believed_designated") or inits != masters[1:2] or masters[1] in (ik.get("init_runs_at_kill") or {}):
        problems.append(f"two bootstraps: {two}, inits {inits}: {masters[1]} believed it initializes but must not "
                        f"have initialized before the re-designation")
    p = h.get("partitioned_rebuild") or {}
    if "no majority attests" not in (p.get("waiting") or "") or not p.get("still_waiting") or p.get("inits") \
            or p.get("apiserver_manifest"):
        problems.append(f"partitioned rebuild must wait and start nothing: {p}")
    kk = h.get("kubeadm_killed_in_join") or {}
    if not kk.get("member_when_killed") or not rb.get("ok"):
        problems.append(f"kubeadm killed in the join, then recovered: {kk}, rebuild {rb}")
    a = h.get("all_masters_reimaged") or {}
    if "run a kubelet" not in (a.get("waiting") or "") or not a.get("still_waiting") or a.get("inits"):
        problems.append(f"all masters reimaged at once must wait and not init: {a}")
if problems:
    print("test-demo: FAILED\n  " + "\n  ".join(problems))
    sys.exit(1)
print(f"test-demo: real Kubernetes {k['server']}: 5 nodes Ready through the VIP, one cluster ({inits[0]} "
      f"initialized it), 0 pulls, "
      f"VIP {r['vip_before']} -> {r['vip_after']} in {r['failover_seconds']} s, rebuild of {rb['node']} ok "
      f"(ConfigMap kept), 3 etcd members")
print(f"test-demo: kubeha serve at {s['url']} installed every node ({sum(installs.values())} installs reported), "
      f"every agent reported done to it; its view: VIP holder {s['fleet_formed']['vip_holder']}, etcd members "
      f"{', '.join(f['etcd_members']['members'])}")
if hostile:
    h = r["hostile"]
    print(f"test-demo: hostile: kubeadm init killed on {masters[0]} with the apiserver up; {masters[1]} "
          f"re-designated: it alone initialized (its first init killed before etcd answered), {masters[0]} (stored "
          f"decision init) joined; {workers[0]}'s kubeadm join killed in its TLS bootstrap, joined after a restart "
          f"(restarts {h['kubeadm_killed_in_init']['restarts']})")
    print(f"test-demo: hostile: second bootstrap did not initialize at formation; partitioned {h['partitioned_rebuild']['node']} waited "
          f"(\"{h['partitioned_rebuild']['waiting'][:80]}...\"); kubeadm join killed with the member "
          f"{h['kubeadm_killed_in_join']['member_when_killed']}, recovered after "
          f"{h['kubeadm_killed_in_join']['restarts']} restart(s); all masters reimaged: no init, waits "
          f"(\"{h['all_masters_reimaged']['waiting'][:80]}...\")")
