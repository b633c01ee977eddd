# Issue 2: the cluster model, secrets and the kubeha CLI.
APT_PACKAGES += openssl
DEMO_TARGETS += demo-core
.PHONY: demo-core
demo-core: build
	@bash scripts/demo-core.sh "$(OUT)"
