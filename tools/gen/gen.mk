# tools/gen: the synthetic chain generator (see forkgen.c).
GEN_BIN := $(BUILD)/tools/forkgen
$(GEN_BIN): tools/gen/forkgen.c | $(BUILD)/tools
	$(CC) $(TOOL_CFLAGS) -o $@ $<
