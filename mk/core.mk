# The cluster model, secrets and the kubeha CLI; `make demo`, the whole pipeline.
APT_PACKAGES += openssl docker-registry python3 curl qemu-system-x86 xorriso
DEMO_TARGETS += demo-run
.PHONY: demo-core demo-run
# The demo's logic is `kubeha-lab` (lab/src/demo: its stages, checks and summary; `build` builds it).
LAB = "$${CARGO_TARGET_DIR:-target}/debug/kubeha-lab"
# Only the model stage (config, secrets, node configs) on the embedded default.
demo-core: build
	@$(LAB) demo-core "$(OUT)"
# Every stage: generated upstream, bundle, media + QEMU boot, five self-forming nodes, drills, summary. The media
# embed the glibc-2.17 agent of node-binary (kubeha's default); the namespaced nodes run the host build.
demo-run: build k8s node-binary
	@$(LAB) demo "$(OUT)" --k8s-bin $(K8S_DIR)/bin

# The whole pipeline as a test: `kubeha-lab demo --hostile` into a temp dir, then its result checked by `kubeha-lab check-result`
# (lab/src/demo/result.rs; `build` builds it): every node installed through kubeha serve and done in the server's
# view, exactly one init, VIP moved, rebuild ok with three etcd members, every node registered through the VIP,
# with the hostile drills (two bootstraps, a partitioned rebuild, kubeadm killed inside the
# join, every master reimaged at once).
TEST_TARGETS += test-demo
.PHONY: test-demo
test-demo: build k8s node-binary
	@out=$$(mktemp -d /tmp/kubeha-demo-test.XXXXXX); \
	$(LAB) demo "$$out" --k8s-bin $(K8S_DIR)/bin --hostile > "$$out.log" 2>&1 || { tail -n 60 "$$out.log"; echo "test-demo: FAILED (log: $$out.log)"; exit 1; }; \
	$(LAB) check-result "$$out/state/cluster/result.json" --hostile || { tail -n 80 "$$out.log"; echo "test-demo: log $$out.log"; exit 1; }; \
	rm -rf "$$out" "$$out.log"
