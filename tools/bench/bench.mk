# tools/bench: `make bench` (full, < 20 min) and `make bench-quick` (smoke).
TOOL_BINS += $(BUILD)/tools/limits $(BUILD)/tools/applydiff $(BUILD)/tools/branchbench $(BUILD)/tools/scalegen
$(BUILD)/tools/limits: tools/bench/limits.c | $(BUILD)/tools
	$(CC) $(TOOL_CFLAGS) -o $@ $< -lxxhash -lzstd
$(BUILD)/tools/applydiff: tools/bench/applydiff.c | $(BUILD)/tools
	$(CC) $(TOOL_CFLAGS) -o $@ $<
$(BUILD)/tools/scalegen: tools/bench/scalegen.c | $(BUILD)/tools
	$(CC) $(TOOL_CFLAGS) -o $@ $<

# The pause-window benchmark drives a VMM through the library (fc.c).
$(BUILD)/tools/branchbench: tools/bench/branchbench.c $(LIB) | $(BUILD)/tools
	$(CC) $(ALL_CFLAGS) $(INTERNAL_INC) $(LDFLAGS) -o $@ $< $(LIB) $(LDLIBS)

# Each bench target ends by charting what it measured (tools/bench/plot.sh:
# PNGs in build/bench/charts/; `make bench-charts` redraws them all from
# the data of the last runs, `tools/bench/plot.sh --record` copies them to
# tools/bench/charts/ for the README).
PLOT = tools/bench/plot.sh $(abspath $(BUILD))/bench
.PHONY: bench bench-quick bench-branch bench-scale bench-scale-quick bench-depth bench-charts
bench: $(FORKCTL) tools
	tools/deps.sh bench
	BUILD=$(abspath $(BUILD)) tools/bench/run.sh
	BUILD=$(abspath $(BUILD)) tools/bench/depth.sh
	$(PLOT)
bench-quick: $(FORKCTL) tools
	BUILD=$(abspath $(BUILD)) tools/bench/run.sh --quick
	BUILD=$(abspath $(BUILD)) tools/bench/depth.sh --quick
	$(PLOT)
bench-branch: $(FORKCTL) tools
	BUILD=$(abspath $(BUILD)) tools/bench/branch.sh
	$(PLOT)
# Restore time against chain depth (512 MiB guest, 50 Diffs, ~3 min).
bench-depth: $(FORKCTL) tools
	BUILD=$(abspath $(BUILD)) tools/bench/depth.sh
	$(PLOT)
bench-charts:
	$(PLOT)
# The catalog-scale benchmark (issue 14): sizes from SCALE_* variables
# (tools/bench/scale.sh lists them); full run about an hour, quick ~2 min.
bench-scale: $(FORKCTL) $(BUILD)/tools/scalegen
	BUILD=$(abspath $(BUILD)) tools/bench/scale.sh
	$(PLOT)
bench-scale-quick: $(FORKCTL) $(BUILD)/tools/scalegen
	BUILD=$(abspath $(BUILD)) tools/bench/scale.sh --quick
	$(PLOT)

# Lazy restore (tools/bench/lazy.sh): File against Uffd loads, fault
# service time, working-set prefetch, 8 VMs on one page server.
.PHONY: bench-lazy bench-lazy-quick
bench-lazy: $(FORKCTL) tools
	BUILD=$(abspath $(BUILD)) tools/bench/lazy.sh
	$(PLOT)
bench-lazy-quick: $(FORKCTL) tools
	BUILD=$(abspath $(BUILD)) tools/bench/lazy.sh --quick
	$(PLOT)
