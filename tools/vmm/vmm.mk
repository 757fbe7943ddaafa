# tools/vmm: fcvmm, the KVM test VMM serving the Firecracker API subset
# forkctl uses (see the top of fcvmm.c).
VMM_BIN := $(BUILD)/tools/fcvmm
$(VMM_BIN): tools/vmm/fcvmm.c | $(BUILD)/tools
	$(CC) $(TOOL_CFLAGS) $(shell pkg-config --cflags json-c) -o $@ $< $(shell pkg-config --libs json-c) -lpthread
