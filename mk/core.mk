# Issue 2: the cluster model, secrets and the kubeha CLI; issue 7: `make demo`, the whole pipeline.
APT_PACKAGES += openssl docker-registry python3 curl qemu-system-x86 xorriso
DEMO_TARGETS += demo-run
.PHONY: demo-core demo-run
# Only the model stage (config, secrets, node configs) on the embedded default.
demo-core: build
	@bash scripts/demo-core.sh "$(OUT)"
# Every stage: generated upstream, bundle, media + QEMU boot, five self-forming nodes, drills, summary.
demo-run: build
	@bash scripts/demo/run.sh "$(OUT)"
