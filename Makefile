# The front door. Thin on purpose: CMake does the building, this file names the
# jobs a user or CI runs. `make help` lists them.

BUILD      ?= build
BUILD_TYPE ?= RelWithDebInfo
WERROR     ?=
JOBS       ?= $(shell nproc 2>/dev/null || echo 2)
CMAKE_ARGS ?=
EDDY       := $(BUILD)/eddy

.PHONY: all build deps demo demo-kafka test unit asan tsan fuzz format format-check bench bench-quick clean help screenshot

all: build

help:
	@echo "make              build eddy into $(BUILD)/ (installs Debian deps if missing)"
	@echo "make demo         embedded broker + generator (40k ev/s) + processor + dashboard"
	@echo "make demo-kafka   the same on a real single-node Apache Kafka (scripts/kafka, JVM)"
	@echo "make test         build with -Werror and run the whole suite (what CI runs)"
	@echo "make unit         unit tests only (no broker)"
	@echo "make asan         the whole suite under ASan+UBSan (build-asan/)"
	@echo "make tsan         the threaded tests under TSan (build-tsan/)"
	@echo "make fuzz         the libFuzzer targets, a fixed number of runs each (build-fuzz/, clang)"
	@echo "make format       reformat the C sources with clang-format"
	@echo "make format-check fail if any C source is not clang-formatted"
	@echo "make bench        the benchmark suite (bench/, ~16 min): docs/benchmarks.md"
	@echo "make bench-quick  the same, short (< 3 min, noisier figures)"
	@echo "make screenshot   the browser test, saving docs/dashboard.png"

# Installs only what is missing; a no-op on a machine that has everything.
deps:
	@scripts/install-deps --check >/dev/null 2>&1 || scripts/install-deps

# A build dir keeps the -Werror choice it was configured with (OFF unless WERROR
# says otherwise); a WERROR given here that differs from it (make test: ON)
# configures it again, so `make test` after `make` really builds with -Werror.
CACHED_WERROR := $(shell sed -n 's/^EDDY_WERROR:BOOL=//p' $(BUILD)/CMakeCache.txt 2>/dev/null)
ifneq ($(WERROR),)
ifneq ($(WERROR),$(CACHED_WERROR))
.PHONY: $(BUILD)/CMakeCache.txt
endif
endif

$(BUILD)/CMakeCache.txt: | deps
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=$(BUILD_TYPE) -DEDDY_WERROR=$(or $(WERROR),OFF) $(CMAKE_ARGS)

build: deps $(BUILD)/CMakeCache.txt
	cmake --build $(BUILD) -j $(JOBS)

demo: build
	scripts/demo $(EDDY)

demo-kafka: build
	scripts/demo --kafka $(EDDY)

test:
	$(MAKE) build WERROR=ON
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS)

unit: build
	cd $(BUILD) && ctest --output-on-failure -L unit -j $(JOBS)

asan:
	$(MAKE) build BUILD=build-asan BUILD_TYPE=Asan WERROR=ON
	cd build-asan && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
	  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 ctest --output-on-failure -j $(JOBS)

screenshot: build
	node tests/ui/dashboard.test.mjs $(EDDY) docs/dashboard.png

tsan:
	$(MAKE) build BUILD=build-tsan BUILD_TYPE=Tsan WERROR=ON
	cd build-tsan && TSAN_OPTIONS="halt_on_error=1 suppressions=$(CURDIR)/tests/tsan.supp" \
	  ctest --output-on-failure -L unit -j $(JOBS)

# libFuzzer needs clang; only the fuzz targets are built (docs/development.md).
fuzz: deps
	cmake -S . -B build-fuzz -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=RelWithDebInfo \
	  -DEDDY_WERROR=ON $(CMAKE_ARGS)
	cmake --build build-fuzz -j $(JOBS) --target fuzz_decode fuzz_topology fuzz_http fuzz_ws_frame fuzz_sketch fuzz_config
	cd build-fuzz && ctest --output-on-failure -L fuzz

C_SOURCES = $(shell git ls-files --cached --others --exclude-standard '*.c' '*.h' 2>/dev/null)

format:
	clang-format -i $(C_SOURCES)

format-check:
	@scripts/install-deps --check >/dev/null 2>&1 || scripts/install-deps
	clang-format --dry-run --Werror $(C_SOURCES)
	@echo "format-check: ok"

bench: build
	bench/run --full $(BUILD)

bench-quick: build
	bench/run --quick $(BUILD)

clean:
	rm -rf build build-asan build-tsan build-fuzz
