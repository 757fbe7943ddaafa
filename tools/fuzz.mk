# tools/fuzz.mk: fuzz targets and corpus replay.
# Included by the Makefile (after LIB, ALL_CFLAGS, LDLIBS are defined).
#
#   make fuzz          builds tests/fuzz/fuzz_*.c as libFuzzer targets
#                      (clang, ASan + UBSan) in $(FUZZ_BUILD) and runs each
#                      for FUZZ_SECONDS (default 60; FUZZ_SECONDS=600 is the
#                      documented 10-minute run). The checked-in corpus seeds
#                      a working corpus in $(FUZZ_BUILD)/fuzz/corpus-<t>;
#                      crashes are written to $(FUZZ_BUILD)/fuzz/ and fail
#                      the run: minimize one (-minimize_crash=1), copy it
#                      into tests/fuzz/corpus/<t>/ and fix the bug.
#                      FUZZ_FLAGS passes more libFuzzer options (catalog
#                      inputs are short programs: it gets -len_control=0).
#   make fuzz-replay   builds each target as a plain program that replays
#                      tests/fuzz/corpus/<t>/ once (part of `make check`;
#                      under `make asan` with the sanitizers).

FUZZ_TARGETS := chunk pmap ident forkd extents catalog
FUZZ_SECONDS ?= 60
FUZZ_BUILD ?= build-fuzz
FUZZ_CC ?= clang
FUZZ_FLAGS ?=
FUZZ_COMMON := tests/fuzz/fuzz_util.c
FUZZ_DEPS := tests/fuzz/fuzz.h $(FUZZ_COMMON)
FUZZ_REPLAY_BIN := $(patsubst %,$(BUILD)/fuzz/replay_%,$(FUZZ_TARGETS))
FUZZ_BIN := $(patsubst %,$(BUILD)/fuzz/fuzz_%,$(FUZZ_TARGETS))

.PHONY: fuzz fuzz-bins fuzz-replay

$(BUILD)/fuzz:
	mkdir -p $@

# Plain replay programs, built like the unit tests (same CC, same SAN).
$(BUILD)/fuzz/replay_%: tests/fuzz/fuzz_%.c tests/fuzz/replay_main.c $(FUZZ_DEPS) $(LIB) | $(BUILD)/fuzz
	$(CC) $(ALL_CFLAGS) $(INTERNAL_INC) -Itests/fuzz $(LDFLAGS) -o $@ $< tests/fuzz/replay_main.c $(FUZZ_COMMON) \
	    $(LIB) $(LDLIBS)

fuzz-replay: $(FUZZ_REPLAY_BIN)
	@set -e; for t in $(FUZZ_TARGETS); do $(BUILD)/fuzz/replay_$$t tests/fuzz/corpus/$$t; done

# libFuzzer binaries: only in a build whose library has fuzzer coverage
# (the recursive make in `fuzz` sets that up).
$(BUILD)/fuzz/fuzz_%: tests/fuzz/fuzz_%.c $(FUZZ_DEPS) $(LIB) | $(BUILD)/fuzz
	$(CC) $(ALL_CFLAGS) $(INTERNAL_INC) -Itests/fuzz $(LDFLAGS) -fsanitize=fuzzer -o $@ $< $(FUZZ_COMMON) \
	    $(LIB) $(LDLIBS)

fuzz-bins: $(FUZZ_BIN)

fuzz:
	$(MAKE) -f $(firstword $(MAKEFILE_LIST)) BUILD=$(FUZZ_BUILD) CC=$(FUZZ_CC) SAN=address,undefined WERROR= \
	    CFLAGS="-O1 -g -fsanitize=fuzzer-no-link" fuzz-bins
	@set -e; for t in $(FUZZ_TARGETS); do \
	    mkdir -p $(FUZZ_BUILD)/fuzz/corpus-$$t; \
	    echo "== fuzz_$$t ($(FUZZ_SECONDS) s)"; \
	    case $$t in catalog) extra="-len_control=0 -max_len=96";; *) extra=;; esac; \
	    $(FUZZ_BUILD)/fuzz/fuzz_$$t -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 \
	        -artifact_prefix=$(FUZZ_BUILD)/fuzz/crash-$$t- $$extra $(FUZZ_FLAGS) \
	        $(FUZZ_BUILD)/fuzz/corpus-$$t tests/fuzz/corpus/$$t 2>$(FUZZ_BUILD)/fuzz/$$t.log \
	        || { tail -n 60 $(FUZZ_BUILD)/fuzz/$$t.log; exit 1; }; \
	    grep -E '^#[0-9]+.*(DONE|cov:)' $(FUZZ_BUILD)/fuzz/$$t.log | tail -n 1; \
	    grep -E 'stat::(number_of_executed_units|average_exec_per_sec|peak_rss_mb)' $(FUZZ_BUILD)/fuzz/$$t.log; \
	done
