# Long stress runs (short versions run in make check).
.PHONY: crash-test stress-test
crash-test: $(FORKCTL) tools
	FORKCTL=$(abspath $(FORKCTL)) FORKGEN=$(abspath $(GEN_BIN)) tools/crashtest.sh --kills 200 --chunk-size 1M
stress-test: $(FORKCTL) tools
	FORKCTL=$(abspath $(FORKCTL)) FORKGEN=$(abspath $(GEN_BIN)) tools/concurrency.sh --seconds 60
