# tools/vmm: fcvmm, the test VMM serving the Firecracker API subset forkctl
# uses (kvm or thread backend; see the top of fcvmm.c), and sparsecmp, which
# compares big sparse memory images by their data extents.
VMM_BIN := $(BUILD)/tools/fcvmm
$(VMM_BIN): tools/vmm/fcvmm.c | $(BUILD)/tools
	$(CC) $(TOOL_CFLAGS) $(shell pkg-config --cflags json-c) -o $@ $< $(shell pkg-config --libs json-c) -lpthread
TOOL_BINS += $(BUILD)/tools/sparsecmp
$(BUILD)/tools/sparsecmp: tools/vmm/sparsecmp.c | $(BUILD)/tools
	$(CC) $(TOOL_CFLAGS) -o $@ $<
