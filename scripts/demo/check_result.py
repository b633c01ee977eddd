#!/usr/bin/env python3
"""Checks a demo run's result.json: what `make demo` must show, as assertions."""
import json
import sys

r = json.load(open(sys.argv[1]))
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
if problems:
    print("test-demo: FAILED\n  " + "\n  ".join(problems))
    sys.exit(1)
print(f"test-demo: 5 nodes done, one init ({inits[0]}), VIP {r['vip_before']} -> {r['vip_after']} in "
      f"{r['failover_seconds']} s, rebuild of {rb['node']} ok, 3 etcd members")
