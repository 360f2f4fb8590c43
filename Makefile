# ckfb: a C host embedding Lua 5.4. `make` builds build/ckfb; `make help` lists targets.

PREFIX  ?= /usr/local
DESTDIR ?=
CC      ?= cc
V       ?= 0
Q        = $(if $(filter 1,$(V)),,@)

# SAN=1 builds an ASan+UBSan binary under build-san/ (the test suite must also pass there).
ifeq ($(SAN),1)
BUILD    = build-san
SANFLAGS = -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
OPT      = -O1 -g
else
BUILD    = build
SANFLAGS =
OPT      = -O2 -g
endif

# libcurl is loaded with dlopen on first use (host/lcurl.h): only its headers here.
PKGS     = lua5.4 lua5.4-cjson yaml-0.1
# The version: semver in the file VERSION; the commit beside it (ckfb version).
VERSION := $(shell cat VERSION)
COMMIT  := $(shell git describe --always --dirty --exclude '*' 2>/dev/null || echo unknown)
WARN     = -Wall -Wextra -Werror -Wshadow -Wundef -Wwrite-strings \
           -Wmissing-prototypes -Wstrict-prototypes -Wno-unused-parameter
CFLAGS  += -std=c11 -D_GNU_SOURCE $(OPT) $(WARN) $(SANFLAGS) \
           $(shell pkg-config --cflags $(PKGS) libcurl) -I$(BUILD)/gen
LDFLAGS += $(SANFLAGS) -Wl,-E
# Lua and cjson link statically, as Debian's own lua5.4 does: no PLT and no
# start-up relocations for the interpreter. -Wl,-E (above) exports the Lua
# API to C modules loaded from disk (busted's lfs, term, system).
LDLIBS  += -Wl,-Bstatic -llua5.4-cjson -llua5.4 -Wl,-Bdynamic -lyaml -ldl -lm -pthread

HOST_SRC = $(wildcard host/*.c)
HOST_OBJ = $(HOST_SRC:host/%.c=$(BUILD)/obj/%.o)
LUA_SRC  = $(sort $(wildcard stdlib/*/*/*.lua stdlib/*/*.lua stdlib/*.lua scripts/*.lua))

# C unit tests: each includes the host file it tests, so it links with the rest.
C_TESTS  = $(patsubst tests/host/%.c,$(BUILD)/tests/%,$(wildcard tests/host/*_test.c))

# Fuzzing (clang's libFuzzer): `make fuzz FUZZ_SECONDS=600` runs every target
# of tests/fuzz for that long, seeded from tests/fuzz/corpus/<target>.
FUZZ_SECONDS ?= 60
FUZZ_TARGETS = $(basename $(notdir $(wildcard tests/fuzz/*.lua)))
FUZZ_CFLAGS  = -std=c11 -D_GNU_SOURCE -O1 -g -fsanitize=fuzzer-no-link,address,undefined \
               $(shell pkg-config --cflags $(PKGS) libcurl) -Ibuild-fuzz/gen -Ihost
FUZZ_OBJ     = $(patsubst host/%.c,build-fuzz/obj/%.o,$(filter-out host/main.c,$(HOST_SRC))) build-fuzz/obj/embedded.o

.PHONY: all test check test-san lint bench run setup install clean help fuzz valgrind deb
all: $(BUILD)/ckfb

$(BUILD)/ckfb: $(HOST_OBJ) $(BUILD)/obj/embedded.o
	@echo "  LD      $@"
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/obj/%.o: host/%.c host/*.h $(BUILD)/gen/version.h | $(BUILD)/obj
	@echo "  CC      $<"
	$(Q)$(CC) $(CFLAGS) -Ihost -c -o $@ $<

# Rewritten only when `git describe` changes, so a commit rebuilds what shows it.
$(BUILD)/gen/version.h: FORCE | $(BUILD)/gen
	$(Q)printf '#define CKFB_VERSION "%s"\n#define CKFB_COMMIT "%s"\n' '$(VERSION)' '$(COMMIT)' > $@.tmp
	$(Q)cmp -s $@.tmp $@ && rm -f $@.tmp || mv $@.tmp $@

FORCE:

# The stdlib and shipped scripts are embedded as Lua source (not bytecode).
$(BUILD)/gen/embedded.c: $(BUILD)/embed $(LUA_SRC) | $(BUILD)/gen
	@echo "  EMBED   $@"
	$(Q)$(BUILD)/embed $(LUA_SRC) > $@.tmp && mv $@.tmp $@

$(BUILD)/obj/embedded.o: $(BUILD)/gen/embedded.c | $(BUILD)/obj
	@echo "  CC      $<"
	$(Q)$(CC) $(CFLAGS) -Ihost -c -o $@ $<

$(BUILD)/embed: host/tools/embed.c | $(BUILD)
	@echo "  CC      $<"
	$(Q)$(CC) -std=c11 -O2 $(WARN) -o $@ $<

$(BUILD) $(BUILD)/obj $(BUILD)/gen $(BUILD)/tests:
	$(Q)mkdir -p $@

# Installs the Debian packages (and npm modules) a fresh Debian 12 lacks.
setup:
	$(Q)./.ci/setup

run: $(BUILD)/ckfb
	$(Q)CKFB=$(BUILD)/ckfb demo/run

$(BUILD)/tests/%_test: tests/host/%_test.c tests/host/tap.h host/%.c $(HOST_OBJ) $(BUILD)/obj/embedded.o | $(BUILD)/tests
	@echo "  CC      $<"
	$(Q)$(CC) $(CFLAGS) -Ihost $(LDFLAGS) -o $@ $< \
	  $(filter-out $(BUILD)/obj/main.o $(BUILD)/obj/$*.o,$(HOST_OBJ)) $(BUILD)/obj/embedded.o $(LDLIBS)

test: $(BUILD)/ckfb $(C_TESTS)
	$(Q)CKFB=$(BUILD)/ckfb tests/run

test-san:
	$(Q)$(MAKE) --no-print-directory SAN=1 test

lint:
	$(Q)luacheck -q stdlib scripts tests bench examples tools

check: lint test test-san

# memcheck over the specs that do not measure time (valgrind slows ckfb ~30x)
VALGRIND_SPECS = tests/stdlib/ckfb/json_spec.lua tests/stdlib/ckfb/yaml_spec.lua tests/stdlib/ckfb/log_spec.lua \
                 tests/stdlib/ckfb/repl_spec.lua tests/stdlib/ckfb/fuzz_corpus_spec.lua tests/stdlib/ckfb/juju_spec.lua \
                 tests/stdlib/ckfb/s3_spec.lua tests/stdlib/ckfb/config_spec.lua
valgrind: $(BUILD)/ckfb
	$(Q)CKFB=$(BUILD)/ckfb CKFB_WRAP="valgrind -q --leak-check=full --show-leak-kinds=definite \
	  --errors-for-leak-kinds=definite --error-exitcode=99 --trace-children=no" tests/run $(VALGRIND_SPECS)

# The Debian package (packaging/build-deb): binary, man pages, completions, systemd units.
deb: $(BUILD)/ckfb
	$(Q)packaging/build-deb $(BUILD)/ckfb $(BUILD)

bench: build/ckfb
	$(Q)bench/run

build-fuzz/obj/%.o: host/%.c host/*.h $(BUILD)/gen/version.h
	@mkdir -p build-fuzz/obj build-fuzz/gen && cp $(BUILD)/gen/version.h build-fuzz/gen/
	@echo "  CLANG   $<"
	$(Q)clang $(FUZZ_CFLAGS) -c -o $@ $<

build-fuzz/obj/embedded.o: $(BUILD)/gen/embedded.c
	@mkdir -p build-fuzz/obj
	$(Q)clang $(FUZZ_CFLAGS) -c -o $@ $<

build-fuzz/ckfb-fuzz: tests/fuzz/fuzz.c $(FUZZ_OBJ)
	@echo "  LD      $@"
	$(Q)clang $(FUZZ_CFLAGS) -fsanitize=fuzzer -Wl,-E -o $@ $^ $(LDLIBS)

fuzz: build-fuzz/ckfb-fuzz
	$(Q)tests/fuzz/run $(FUZZ_SECONDS) $(FUZZ_TARGETS)

install: $(BUILD)/ckfb
	install -d $(DESTDIR)$(PREFIX)/bin
	install -m 0755 $(BUILD)/ckfb $(DESTDIR)$(PREFIX)/bin/ckfb

clean:
	rm -rf build build-san build-fuzz

help:
	@echo "make            build build/ckfb"
	@echo "make run        build and run the shipped main job"
	@echo "make test       run every test against build/ckfb"
	@echo "make test-san   the same under an ASan+UBSan build (build-san/ckfb)"
	@echo "make check      lint, test and test-san"
	@echo "make valgrind   the specs that do not measure time, under valgrind memcheck"
	@echo "make bench      run the benchmarks side by side with their peers"
	@echo "make fuzz FUZZ_SECONDS=600   run every libFuzzer target that long"
	@echo "make setup      install what a fresh Debian 12 lacks (needs root)"
	@echo "make install PREFIX=/usr/local DESTDIR="
