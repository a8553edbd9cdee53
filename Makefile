# weft — one non-recursive Makefile.
#
#   make            build build/weft
#   make test       install missing Debian packages, build, run every test
#   make asan       the same suite under AddressSanitizer + UBSan (build/asan/)
#   make fuzz       build libFuzzer targets with clang (build/fuzz/)
#   make bench      run the benchmarks in bench/
#   make demo       build and run the example ML pipeline with `weft run`
#
# Project flags live in their own variables so that a user's CFLAGS adds to
# them instead of replacing them.

BUILD    ?= build
CC       ?= cc
CFLAGS   ?= -O2 -g
LDFLAGS  ?=

WF_CFLAGS = -std=c17 -D_DEFAULT_SOURCE -I. \
	-Wall -Wextra -Wpedantic -Wshadow -Wstrict-prototypes \
	-Wmissing-prototypes -Wformat=2 -Wno-format-nonliteral -Werror \
	-MMD -MP
PKGS      = libuv lmdb msgpack yaml-0.1
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
YAML_LIBS  := $(shell pkg-config --libs yaml-0.1 2>/dev/null || echo -lyaml)
CHECK_CFLAGS := $(shell pkg-config --cflags check 2>/dev/null)
CHECK_LIBS   := $(shell pkg-config --libs check 2>/dev/null || echo -lcheck)
# Debian's libnng ships no .pc file. HMAC-SHA256 (common/auth.c) comes
# from mbedTLS's libmbedcrypto: libnng already links it, so it adds no
# library to the process (libmbedtls-dev; its 2.28 has no .pc file either).
# common/tls.c checks certificates with libmbedx509, which libnng links too.
ALL_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null || \
	echo -luv -llmdb -lmsgpackc -lyaml) -lnng -lmbedx509 -lmbedcrypto \
	-lpthread -lm

# Modules, bottom up. Each is a static library; a unit test links only its
# own module (and what that module may depend on), so a layering mistake
# fails to link.
MODULES = dag common scheduler worker
dag_SRC       = $(wildcard dag/*.c)
common_SRC    = $(wildcard common/*.c)
scheduler_SRC = $(wildcard scheduler/*.c)
worker_SRC    = $(wildcard worker/*.c)
cli_SRC       = $(wildcard cli/*.c)

dag_LIBS       = $(BUILD)/libwf_dag.a $(YAML_LIBS) -lm
common_LIBS    = $(BUILD)/libwf_common.a $(ALL_LIBS)
scheduler_LIBS = $(BUILD)/libwf_scheduler.a $(BUILD)/libwf_dag.a \
	$(BUILD)/libwf_common.a $(ALL_LIBS)
worker_LIBS    = $(BUILD)/libwf_worker.a $(BUILD)/libwf_common.a $(ALL_LIBS)

obj = $(patsubst %.c,$(BUILD)/%.o,$(1))

WEFT = $(BUILD)/weft

.PHONY: all test unit system asan fuzz fuzz-run bench demo deps clean format
all: $(WEFT)

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(WF_CFLAGS) $(PKG_CFLAGS) $(CHECK_CFLAGS) $(CFLAGS) -c $< -o $@

define module_rules
$(BUILD)/libwf_$(1).a: $(call obj,$($(1)_SRC))
	@mkdir -p $$(dir $$@)
	rm -f $$@
	$$(if $$^,ar rcs $$@ $$^,ar rcs $$@)
endef
$(foreach m,$(MODULES),$(eval $(call module_rules,$(m))))

$(WEFT): $(call obj,$(cli_SRC)) $(foreach m,$(MODULES),$(BUILD)/libwf_$(m).a)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $(call obj,$(cli_SRC)) \
		$(BUILD)/libwf_scheduler.a $(BUILD)/libwf_worker.a \
		$(BUILD)/libwf_dag.a $(BUILD)/libwf_common.a $(ALL_LIBS)

# Unit tests: tests/unit/MODULE/test_NAME.c -> $(BUILD)/tests/MODULE/test_NAME
define unit_rules
$(1)_TESTS = $(patsubst tests/unit/$(1)/%.c,$(BUILD)/tests/$(1)/%,\
	$(wildcard tests/unit/$(1)/test_*.c))
$(BUILD)/tests/$(1)/%: $(BUILD)/tests/unit/$(1)/%.o $(BUILD)/libwf_$(1).a \
		$(if $(filter scheduler,$(1)),$(BUILD)/libwf_dag.a $(BUILD)/libwf_common.a) \
		$(if $(filter worker,$(1)),$(BUILD)/libwf_common.a)
	@mkdir -p $$(dir $$@)
	$$(CC) $$(CFLAGS) $$(LDFLAGS) -o $$@ $$< $$($(1)_LIBS) $$(CHECK_LIBS)
endef
$(foreach m,$(MODULES),$(eval $(call unit_rules,$(m))))
UNIT_TESTS = $(foreach m,$(MODULES),$($(m)_TESTS))

# Fuzz targets: tests/fuzz/NAME.c defines LLVMFuzzerTestOneInput and names
# its module in a "// module: X" first line. Built here with a small replay
# main (tests/fuzz/replay.c) so that every saved input runs in `make test`.
FUZZ_SRC     = $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_REPLAYS = $(patsubst tests/fuzz/%.c,$(BUILD)/fuzz-replay/%,$(FUZZ_SRC))
fuzz_module  = $(shell sed -n '1s|^// module: *||p' $(1))
$(BUILD)/fuzz-replay/%: $(BUILD)/tests/fuzz/%.o $(BUILD)/tests/fuzz/replay.o \
		$(foreach m,$(MODULES),$(BUILD)/libwf_$(m).a)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< $(BUILD)/tests/fuzz/replay.o \
		$($(call fuzz_module,tests/fuzz/$*.c)_LIBS)

TEST_BINS = $(WEFT) $(UNIT_TESTS) $(FUZZ_REPLAYS)

deps:
	@./scripts/install-deps

# `make test` is what CI runs (.ci/run). It ends with "N passed, N failed".
test: deps
	@$(MAKE) --no-print-directory $(TEST_BINS)
	@BUILD=$(BUILD) ./tests/run

unit: $(UNIT_TESTS)
	@BUILD=$(BUILD) ./tests/run --unit

system: $(WEFT)
	@BUILD=$(BUILD) ./tests/run --system

ASAN_FLAGS = -O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer \
	-fno-sanitize-recover=undefined
asan: deps
	@$(MAKE) --no-print-directory BUILD=build/asan CFLAGS="$(ASAN_FLAGS)" \
		LDFLAGS="-fsanitize=address,undefined" test

FUZZ_CFLAGS = -O1 -g -fsanitize=fuzzer,address,undefined
fuzz: deps
	@$(MAKE) --no-print-directory BUILD=build/fuzz CC=clang \
		CFLAGS="-O1 -g -fsanitize=fuzzer-no-link,address,undefined" \
		$(patsubst tests/fuzz/%.c,build/fuzz/fuzzers/%,$(FUZZ_SRC))
build/fuzz/fuzzers/%: build/fuzz/tests/fuzz/%.o \
		$(foreach m,$(MODULES),build/fuzz/libwf_$(m).a)
	@mkdir -p $(dir $@)
	clang $(FUZZ_CFLAGS) -o $@ $< \
		$(subst $(BUILD)/,build/fuzz/,$($(call fuzz_module,tests/fuzz/$*.c)_LIBS))

# `make bench BENCH=--quick` passes options to bench/run (--quick,
# --rounds R, --stg-limit N, --no-dask). Dask is optional: without Debian's
# python3-distributed its column says "-".
bench: deps
	@./scripts/install-deps --bench || echo "bench: running without Dask" >&2
	@$(MAKE) --no-print-directory $(WEFT)
	@./bench/run $(BENCH)

# The simulated worker pool of bench/capacity.sh and bench/scale.sh.
$(BUILD)/bench/simworker: $(BUILD)/bench/simworker.o $(BUILD)/libwf_common.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< $(common_LIBS)

# Recursive, like test: the Makefile is read again once deps are there.
demo: deps
	@$(MAKE) --no-print-directory $(WEFT)
	@./examples/ml-pipeline/run-demo

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

clean:
	rm -rf build

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
