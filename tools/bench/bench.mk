# tools/bench: `make bench` (full, < 20 min) and `make bench-quick` (smoke).
TOOL_BINS += $(BUILD)/tools/limits $(BUILD)/tools/applydiff
$(BUILD)/tools/limits: tools/bench/limits.c | $(BUILD)/tools
	$(CC) $(TOOL_CFLAGS) -o $@ $< -lxxhash -lzstd
$(BUILD)/tools/applydiff: tools/bench/applydiff.c | $(BUILD)/tools
	$(CC) $(TOOL_CFLAGS) -o $@ $<

.PHONY: bench bench-quick
bench: $(FORKCTL) tools
	tools/deps.sh bench
	BUILD=$(abspath $(BUILD)) tools/bench/run.sh
bench-quick: $(FORKCTL) tools
	BUILD=$(abspath $(BUILD)) tools/bench/run.sh --quick
