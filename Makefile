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
# libcurl is opened when first used (src/integrations/curlx.c), not linked: commands
# that never speak HTTP do not load it and the 27 libraries it pulls in.
LDLIBS := $(shell pkg-config --libs $(filter-out libcurl,$(PKGS))) -lpthread -ldl
LDFLAGS += $(if $(SAN),-fsanitize=$(SAN))
TOOL_CFLAGS := -std=c11 -D_GNU_SOURCE $(WARN) $(if $(WERROR),-Werror) -O2 -g

# The tree is tiered (README, "Architecture"): src/engine/ is the storage
# engine (catalog, chunk files, ingest, restore, gc, verify) and needs only
# SQLite, zstd and xxhash; src/integrations/ (Firecracker, forkd, page
# server, remote tier) uses the public API and links json-c, libcrypto and
# (at run time) libcurl; src/cli/ is forkctl, over the public header alone.
# Include paths enforce the direction: the engine sees only src/ (the public
# header) and its own folder, integrations see the engine's headers, forkctl
# sees src/ alone. libforkstore-engine.a is the engine; libforkstore.a and
# libforkstore.so hold both tiers.
ENGINE_SRC := $(wildcard src/engine/*.c)
INTEG_SRC := $(wildcard src/integrations/*.c)
ENGINE_OBJ := $(patsubst src/%.c,$(BUILD)/obj/%.o,$(ENGINE_SRC)) $(BUILD)/obj/engine/migrations.o
INTEG_OBJ := $(patsubst src/%.c,$(BUILD)/obj/%.o,$(INTEG_SRC))
LIB_OBJ := $(ENGINE_OBJ) $(INTEG_OBJ)
ENGINE_LDLIBS := $(shell pkg-config --libs sqlite3 libxxhash libzstd) -lpthread
# Tests and tools reach internal headers of both tiers.
INTERNAL_INC := -Isrc -Isrc/engine -Isrc/integrations
MIGRATIONS := $(sort $(wildcard migrations/[0-9][0-9][0-9][0-9]_*.sql))
ENGINE_LIB := $(BUILD)/libforkstore-engine.a
LIB := $(BUILD)/libforkstore.a
VERSION := $(shell sed -n 's/^\#define FKS_VERSION_STRING "\(.*\)"/\1/p' src/forkstore.h)
SONAME := libforkstore.so.0
SHLIB := $(BUILD)/libforkstore.so.$(VERSION)
FORKCTL := $(BUILD)/forkctl
# Unit tests mirror the tiers: tests/engine/ link the engine archive alone
# (with SQLite, zstd and xxhash: the proof that an embedder can), and
# tests/integrations/ the whole library.
ENGINE_TEST_SRC := $(wildcard tests/engine/test_*.c)
INTEG_TEST_SRC := $(wildcard tests/integrations/test_*.c)
UNIT_BIN := $(patsubst tests/engine/%.c,$(BUILD)/tests/%,$(ENGINE_TEST_SRC)) \
    $(patsubst tests/integrations/%.c,$(BUILD)/tests/%,$(INTEG_TEST_SRC))

.PHONY: all tools check unit cli hostile test-hostile test-remote bench-remote demo install clean asan ubsan valgrind bench help \
    shlib abi-check abi-update test-shlib test-python layering
all: $(FORKCTL) tools shlib $(ENGINE_LIB)

$(BUILD)/obj/engine $(BUILD)/obj/integrations $(BUILD)/tools $(BUILD)/tests:
	mkdir -p $@

# Library objects serve the archive and the shared library alike: PIC,
# every symbol hidden but the public header's (it pushes default
# visibility), so libforkstore.so exports fks_* and nothing else.
# They depend on this Makefile: a change of flags (visibility!) rebuilds them.
LIB_CFLAGS := -fPIC -fvisibility=hidden
$(BUILD)/obj/engine/%.o: src/engine/%.c $(wildcard src/engine/*.h) src/forkstore.h Makefile | $(BUILD)/obj/engine
	$(CC) $(ALL_CFLAGS) $(LIB_CFLAGS) -Isrc -c -o $@ $<

$(BUILD)/obj/integrations/%.o: src/integrations/%.c $(wildcard src/*/*.h) src/forkstore.h Makefile | $(BUILD)/obj/integrations
	$(CC) $(ALL_CFLAGS) $(LIB_CFLAGS) -Isrc -Isrc/engine -c -o $@ $<

$(BUILD)/tools/embed_sql: tools/embed_sql.c | $(BUILD)/tools
	$(CC) $(TOOL_CFLAGS) -o $@ $<

$(BUILD)/migrations.c: $(BUILD)/tools/embed_sql $(MIGRATIONS)
	$(BUILD)/tools/embed_sql $@ $(MIGRATIONS)

$(BUILD)/obj/engine/migrations.o: $(BUILD)/migrations.c src/engine/catalog.h Makefile | $(BUILD)/obj/engine
	$(CC) $(ALL_CFLAGS) $(LIB_CFLAGS) -Isrc -Isrc/engine -c -o $@ $<

$(ENGINE_LIB): $(ENGINE_OBJ)
	rm -f $@
	ar rcs $@ $^

$(LIB): $(LIB_OBJ)
	rm -f $@
	ar rcs $@ $^

# libforkstore.so.VERSION, soname libforkstore.so.0 (bumped when the ABI
# changes incompatibly: see abi-check), with the links ld and ld.so use.
shlib: $(SHLIB)
$(SHLIB): $(LIB_OBJ) src/abi/libforkstore.map
	$(CC) -shared -Wl,-soname,$(SONAME) -Wl,--version-script=src/abi/libforkstore.map \
	    $(if $(SAN),,-Wl,--no-undefined) $(LDFLAGS) -o $@ $(LIB_OBJ) $(LDLIBS)
	ln -sf $(notdir $@) $(BUILD)/$(SONAME)
	ln -sf $(SONAME) $(BUILD)/libforkstore.so

# The ABI check: the shared library's dynamic symbols (name and kind)
# against src/abi/libforkstore.sym, and, where abigail-tools is installed
# (tools/deps.sh build installs it), the types of every exported function
# and the structs they take against src/abi/libforkstore.abi (abidiff).
# A difference fails; `make abi-update` records the new ABI, and a change
# that is not an addition needs SONAME bumped in the same commit.
ABI_SYMS = nm -D --defined-only $(SHLIB) | awk '{sub(/@.*/, "", $$3); print $$3, $$2}' | sort
abi-check: $(SHLIB)
	@$(ABI_SYMS) >$(BUILD)/abi.sym
	@if grep -v '^fks_[a-z0-9_]* T$$' $(BUILD)/abi.sym | grep -v '^FORKSTORE_0 A$$'; then \
	    echo "abi-check: $(SHLIB) exports the symbols above, not only fks_* functions" >&2; exit 1; fi
	@diff -u src/abi/libforkstore.sym $(BUILD)/abi.sym || \
	    { echo "abi-check: exported symbols differ from src/abi/libforkstore.sym (make abi-update)" >&2; exit 1; }
	@if command -v abidiff >/dev/null; then \
	    abidiff --no-added-syms src/abi/libforkstore.abi $(SHLIB) >$(BUILD)/abi.diff; rc=$$?; \
	    if [ $$rc -ne 0 ]; then cat $(BUILD)/abi.diff; \
	        echo "abi-check: types of the ABI changed (abidiff exit $$rc); make abi-update, and bump SONAME if not compatible" >&2; exit 1; fi; \
	    echo "abi-check: $$(wc -l <src/abi/libforkstore.sym) symbols, types unchanged (abidiff)"; \
	else echo "abi-check: $$(wc -l <src/abi/libforkstore.sym) symbols (abidiff not installed: types not compared)"; fi

abi-update: $(SHLIB)
	$(ABI_SYMS) >src/abi/libforkstore.sym
	abidw --no-corpus-path --no-comp-dir-path --no-show-locs --out-file src/abi/libforkstore.abi $(SHLIB)

$(FORKCTL): src/cli/forkctl.c src/forkstore.h $(LIB)
	$(CC) $(ALL_CFLAGS) -Isrc $(LDFLAGS) -o $@ src/cli/forkctl.c $(LIB) $(LDLIBS)

# The man page, with the version from forkstore.h.
MAN := $(BUILD)/forkctl.1
all: $(MAN)
$(MAN): src/cli/forkctl.1 src/forkstore.h
	@mkdir -p $(@D)
	sed 's/@VERSION@/$(shell sed -n 's/^#define FKS_VERSION_STRING "\(.*\)"/\1/p' src/forkstore.h)/g' src/cli/forkctl.1 >$@

# Tool fragments (generator, KVM VMM, benchmarks) define their binaries.
-include tools/gen/gen.mk tools/vmm/vmm.mk tools/bench/bench.mk tools/stress.mk
# Fuzz targets (fuzz, fuzz-replay) and static analysis (analyze).
include tools/fuzz.mk
include tools/analyze.mk
tools: $(GEN_BIN) $(VMM_BIN) $(TOOL_BINS)

# ---- tests ----
$(BUILD)/tests/%: tests/engine/%.c $(ENGINE_LIB) | $(BUILD)/tests
	$(CC) $(ALL_CFLAGS) -Isrc -Isrc/engine $(shell pkg-config --cflags cmocka) $(LDFLAGS) -o $@ $< $(ENGINE_LIB) \
	    $(shell pkg-config --libs cmocka) $(ENGINE_LDLIBS)

$(BUILD)/tests/%: tests/integrations/%.c $(LIB) | $(BUILD)/tests
	$(CC) $(ALL_CFLAGS) $(INTERNAL_INC) $(shell pkg-config --cflags cmocka) $(LDFLAGS) -o $@ $< $(LIB) \
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

# The include rule of the tiers (README, "Architecture"): no include cycle
# among modules, the engine includes no integration or forkctl header,
# forkctl includes only forkstore.h, integrations include no forkctl
# header. tools/layering.sh names the cycle or the edge that breaks it.
layering:
	tools/layering.sh src

# The test tools (jq, curl, sqlite3, ...) are not pkg-config libraries:
# tools/deps.sh installs (as root) or names whatever is missing.
check:
	$(MAKE) layering
	tools/deps.sh build
	tools/deps.sh remote
	$(MAKE) WERROR=1 all $(UNIT_BIN)
	$(MAKE) WERROR=1 unit
	$(MAKE) WERROR=1 cli
	$(MAKE) WERROR=1 hostile
	$(MAKE) WERROR=1 fuzz-replay
	$(MAKE) WERROR=1 test-shlib
	$(MAKE) WERROR=1 test-python
	$(if $(SAN),,$(MAKE) abi-check)

# The installed shared library as an embedder sees it (tests/shlib/run.sh):
# installed under $(BUILD)/stage, a program built with pkg-config alone
# ingests and restores a chain; nm -D shows only fks_* symbols; the same
# program built with pkg-config --static forkstore-engine links the engine
# archive alone and needs no json-c, libcrypto or libcurl.
test-shlib: $(FORKCTL) tools $(SHLIB)
	rm -rf $(BUILD)/stage
	$(MAKE) --no-print-directory install PREFIX=$(abspath $(BUILD))/stage DESTDIR= >/dev/null
	CC="$(CC)" CFLAGS="$(if $(SAN),-fsanitize=$(SAN))" $(TEST_ENV) tests/shlib/run.sh $(abspath $(BUILD))/stage

# The Python binding (src/python/forkstore.py, ctypes over the shared
# library) with the standard library's unittest.
test-python: $(FORKCTL) tools $(SHLIB)
	$(TEST_ENV) FORKSTORE_LIB=$(abspath $(BUILD))/$(SONAME) SAN="$(SAN)" tests/python/run.sh

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
# forkstore.pc is written here, with this install's PREFIX (never a stale
# one from an earlier build).
install: $(FORKCTL) $(MAN) $(SHLIB) $(ENGINE_LIB)
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/lib/pkgconfig $(DESTDIR)$(PREFIX)/include
	install -m 755 $(FORKCTL) $(DESTDIR)$(PREFIX)/bin/forkctl
	install -m 644 $(LIB) $(DESTDIR)$(PREFIX)/lib/libforkstore.a
	install -m 644 $(ENGINE_LIB) $(DESTDIR)$(PREFIX)/lib/libforkstore-engine.a
	install -m 755 $(SHLIB) $(DESTDIR)$(PREFIX)/lib/$(notdir $(SHLIB))
	ln -sf $(notdir $(SHLIB)) $(DESTDIR)$(PREFIX)/lib/$(SONAME)
	ln -sf $(SONAME) $(DESTDIR)$(PREFIX)/lib/libforkstore.so
	sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@VERSION@|$(VERSION)|' src/forkstore.pc.in \
	    >$(DESTDIR)$(PREFIX)/lib/pkgconfig/forkstore.pc
	sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@VERSION@|$(VERSION)|' src/forkstore-engine.pc.in \
	    >$(DESTDIR)$(PREFIX)/lib/pkgconfig/forkstore-engine.pc
	install -m 644 src/forkstore.h $(DESTDIR)$(PREFIX)/include/forkstore.h
	install -d $(DESTDIR)$(PREFIX)/share/man/man1 $(DESTDIR)$(PREFIX)/share/bash-completion/completions
	install -m 644 $(MAN) $(DESTDIR)$(PREFIX)/share/man/man1/forkctl.1
	install -m 644 tools/forkctl.bash-completion $(DESTDIR)$(PREFIX)/share/bash-completion/completions/forkctl

clean:
	rm -rf build build-asan build-ubsan build-fuzz

help:
	@echo "targets: all check layering demo install asan ubsan valgrind abi-check abi-update test-shlib test-python bench bench-quick bench-depth bench-charts bench-branch bench-lazy bench-scale bench-scale-quick fuzz fuzz-replay analyze crash-test stress-test hostile test-hostile test-remote bench-remote clean"
