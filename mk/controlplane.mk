# The self-forming HA control plane (firstboot/src/cluster). The lab tests run REAL keepalived, nginx
# (stream) and a 3-member etcd in network namespaces (root needed; they skip with a message otherwise).
APT_PACKAGES += keepalived nginx libnginx-mod-stream etcd-server iproute2 python3 curl
# Its tests run in `make unit` (nextest, lab group: one at a time); test-controlplane reruns them with reports.
.PHONY: test-controlplane
# Runs the cluster tests with their reports (VIP failover times, rebuild, init/join decisions) on stderr.
test-controlplane: deps
	$(CARGO) test -p kubeha-firstboot --test cluster_render --test cluster_steps --test cluster_decide \
	  --test cluster_etcd --test cluster_lb -- --nocapture --test-threads 1 2>&1 | \
	  grep -E '^(test |VIP|requests|probes|services|link|cold|wrote|rebuild|refused|all at once|reimaged|designated master last|apiserver of|SKIP)|panicked|FAILED|test result' ; \
	  exit $${PIPESTATUS[0]}
