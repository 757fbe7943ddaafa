# forkstore: `make` builds the library and forkctl; `make check` runs every
# test; `make demo` runs the main job on a generated chain. See README.md.

PREFIX ?= /usr/local
BUILD ?= build
CC ?= cc
SAN ?=
WERROR ?=

PKGS := sqlite3 libxxhash libzstd json-c libcurl libcrypto
TEST_PKGS := cmocka

# Install missing build dependencies (as root on Debian) or say exactly how.
ifeq ($(filter clean help,$(MAKECMDGOALS)),)
ifneq ($(shell pkg-config --exists $(PKGS) $(TEST_PKGS) 2>/dev/null && echo yes),yes)
DEPS_RC := $(shell tools/deps.sh build >&2; echo $$?)
ifneq ($(DEPS_RC),0)
$(error forkstore: missing build dependencies (see the apt-get line above))
endif
endif
endif

WARN := -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Wformat=2 -Wvla
CFLAGS ?= -O2 -g
ALL_CFLAGS := -std=c11 -D_GNU_SOURCE $(WARN) $(if $(WERROR),-Werror) $(CFLAGS) \
    $(if $(SAN),-fsanitize=$(SAN) -fno-omit-frame-pointer -fno-sanitize-recover=all) \
    $(shell pkg-config --cflags $(PKGS))
# libcurl is opened when first used (src/curlx.c), not linked: commands
# that never speak HTTP do not load it and the 27 libraries it pulls in.
LDLIBS := $(shell pkg-config --libs $(filter-out libcurl,$(PKGS))) -lpthread -ldl
LDFLAGS += $(if $(SAN),-fsanitize=$(SAN))
TOOL_CFLAGS := -std=c11 -D_GNU_SOURCE $(WARN) $(if $(WERROR),-Werror) -O2 -g

LIB_SRC := $(filter-out src/forkctl.c,$(wildcard src/*.c))
LIB_OBJ := $(patsubst src/%.c,$(BUILD)/obj/%.o,$(LIB_SRC)) $(BUILD)/obj/migrations.o
MIGRATIONS := $(sort $(wildcard migrations/[0-9][0-9][0-9][0-9]_*.sql))
LIB := $(BUILD)/libforkstore.a
FORKCTL := $(BUILD)/forkctl
UNIT_SRC := $(wildcard tests/unit/test_*.c)
UNIT_BIN := $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(UNIT_SRC))

.PHONY: all tools check unit cli hostile test-hostile test-remote bench-remote demo install clean asan ubsan valgrind bench help
all: $(FORKCTL) tools

$(BUILD)/obj $(BUILD)/tools $(BUILD)/tests:
	mkdir -p $@

$(BUILD)/obj/%.o: src/%.c $(wildcard src/*.h) | $(BUILD)/obj
	$(CC) $(ALL_CFLAGS) -c -o $@ $<

$(BUILD)/tools/embed_sql: tools/embed_sql.c | $(BUILD)/tools
	$(CC) $(TOOL_CFLAGS) -o $@ $<

$(BUILD)/migrations.c: $(BUILD)/tools/embed_sql $(MIGRATIONS)
	$(BUILD)/tools/embed_sql $@ $(MIGRATIONS)

$(BUILD)/obj/migrations.o: $(BUILD)/migrations.c src/catalog.h | $(BUILD)/obj
	$(CC) $(ALL_CFLAGS) -Isrc -c -o $@ $<

$(LIB): $(LIB_OBJ)
	rm -f $@
	ar rcs $@ $^

$(FORKCTL): src/forkctl.c src/forkstore.h $(LIB)
	$(CC) $(ALL_CFLAGS) $(LDFLAGS) -o $@ src/forkctl.c $(LIB) $(LDLIBS)

# The man page, with the version from forkstore.h.
MAN := $(BUILD)/forkctl.1
all: $(MAN)
$(MAN): src/forkctl.1 src/forkstore.h
	@mkdir -p $(@D)
	sed 's/@VERSION@/$(shell sed -n 's/^#define FKS_VERSION_STRING "\(.*\)"/\1/p' src/forkstore.h)/g' src/forkctl.1 >$@

# Tool fragments (generator, KVM VMM, benchmarks) define their binaries.
-include tools/gen/gen.mk tools/vmm/vmm.mk tools/bench/bench.mk tools/stress.mk
# Fuzz targets (fuzz, fuzz-replay) and static analysis (analyze).
include tools/fuzz.mk
-include tools/analyze.mk
tools: $(GEN_BIN) $(VMM_BIN) $(TOOL_BINS)

# ---- tests ----
$(BUILD)/tests/%: tests/unit/%.c $(LIB) | $(BUILD)/tests
	$(CC) $(ALL_CFLAGS) -Isrc $(shell pkg-config --cflags cmocka) $(LDFLAGS) -o $@ $< $(LIB) \
	    $(shell pkg-config --libs cmocka) $(LDLIBS)

unit: $(UNIT_BIN)
	@set -e; for t in $(UNIT_BIN); do echo "== $$t"; $$t; done

# An LD_PRELOAD fault injector (no sanitizer: it is loaded into forkctl).
FAILRENAME := $(BUILD)/tests/failrename.so
$(FAILRENAME): tests/cli/failrename.c | $(BUILD)/tests
	$(CC) $(TOOL_CFLAGS) -fPIC -shared -o $@ $< -ldl

TEST_ENV = FORKCTL=$(abspath $(FORKCTL)) FORKGEN=$(abspath $(GEN_BIN)) FCVMM=$(abspath $(VMM_BIN)) \
	    FAILRENAME=$(abspath $(FAILRENAME)) BUILD=$(abspath $(BUILD))

cli: $(FORKCTL) tools $(FAILRENAME)
	$(TEST_ENV) tests/cli/run.sh

# The hostile suite (tests/hostile/README.md): short in make check, long
# (kill loops and races at full count) in make test-hostile.
hostile: $(FORKCTL) tools $(FAILRENAME)
	$(if $(wildcard tests/hostile/t_*.sh),$(TEST_ENV) tests/cli/run.sh $(wildcard tests/hostile/t_*.sh),@echo "hostile: no tests")

test-hostile: $(FORKCTL) tools $(FAILRENAME)
	$(if $(wildcard tests/hostile/t_*.sh),$(TEST_ENV) HOSTILE_LONG=1 tests/cli/run.sh $(wildcard tests/hostile/t_*.sh),@echo "hostile: no tests")

# The remote tier against a real S3 server (Ceph radosgw, tools/s3/rgw.sh;
# tools/deps.sh remote installs it): t_remote, t_remote_gc, t_remote_enc
# (encrypted remotes) and t_lazy_remote (lazy restore from a remote) run
# short in make check, long here (the kill loop at full count, 200 gc
# rounds); bench-remote measures it.
test-remote: $(FORKCTL) tools
	$(TEST_ENV) REMOTE_LONG=1 tests/cli/run.sh tests/cli/t_remote.sh tests/cli/t_remote_gc.sh tests/cli/t_remote_enc.sh \
	    tests/cli/t_lazy_remote.sh

bench-remote: $(FORKCTL) tools
	BUILD=$(abspath $(BUILD)) tools/bench/remote.sh

# The test tools (jq, curl, sqlite3, ...) are not pkg-config libraries:
# tools/deps.sh installs (as root) or names whatever is missing.
check:
	tools/deps.sh build
	tools/deps.sh remote
	$(MAKE) WERROR=1 all $(UNIT_BIN)
	$(MAKE) WERROR=1 unit
	$(MAKE) WERROR=1 cli
	$(MAKE) WERROR=1 hostile
	$(MAKE) WERROR=1 fuzz-replay

asan:
	$(MAKE) BUILD=build-asan SAN=address,undefined CFLAGS="-O1 -g" check

ubsan:
	$(MAKE) BUILD=build-ubsan SAN=undefined CFLAGS="-O1 -g" check

# Memcheck over the round trip (tests/valgrind/run.sh): the unit round
# trip and the ingest/restore/gc/damaged-input CLI tests. ~10 minutes.
valgrind: $(FORKCTL) tools $(FAILRENAME) $(UNIT_BIN)
	tests/valgrind/run.sh $(BUILD)

# ---- demo ----
DEMO_DIR ?= /tmp/forkstore-demo
demo: $(FORKCTL) tools
	FORKCTL=$(abspath $(FORKCTL)) FORKGEN=$(abspath $(GEN_BIN)) tools/demo.sh $(DEMO_DIR)

# ---- install ----
install: $(FORKCTL) $(MAN)
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/lib $(DESTDIR)$(PREFIX)/include
	install -m 755 $(FORKCTL) $(DESTDIR)$(PREFIX)/bin/forkctl
	install -m 644 $(LIB) $(DESTDIR)$(PREFIX)/lib/libforkstore.a
	install -m 644 src/forkstore.h $(DESTDIR)$(PREFIX)/include/forkstore.h
	install -d $(DESTDIR)$(PREFIX)/share/man/man1 $(DESTDIR)$(PREFIX)/share/bash-completion/completions
	install -m 644 $(MAN) $(DESTDIR)$(PREFIX)/share/man/man1/forkctl.1
	install -m 644 tools/forkctl.bash-completion $(DESTDIR)$(PREFIX)/share/bash-completion/completions/forkctl

clean:
	rm -rf build build-asan build-ubsan build-fuzz

help:
	@echo "targets: all check demo install asan ubsan valgrind bench bench-quick bench-scale bench-scale-quick fuzz fuzz-replay analyze crash-test stress-test hostile test-hostile test-remote bench-remote clean"
