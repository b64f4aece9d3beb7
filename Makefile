# Convenience wrapper around Meson.  `make` builds into build/, `make check`
# runs the test suite, `make check-san` builds build-san/ with ASan+UBSan and
# runs it there, `make check-all` does both, `make demo` runs the main job on
# a small generated image, `make fuzz` builds the libFuzzer targets with
# clang into build-fuzz/ and runs each one briefly.
BUILD     ?= build
BUILD_SAN ?= build-san
BUILD_FUZZ ?= build-fuzz
JOBS      ?= 2
FUZZ_SECONDS ?= 20
MESON_TEST = meson test --num-processes $(JOBS) --print-errorlogs
SAN_ENV = ASAN_OPTIONS=halt_on_error=1:detect_leaks=1:abort_on_error=1 \
          UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1:abort_on_error=1

.PHONY: all build check check-san check-all demo fuzz clean

all: build

$(BUILD)/build.ninja:
	meson setup $(BUILD)

build: $(BUILD)/build.ninja
	ninja -C $(BUILD) -j$(JOBS)

check: build
	$(MESON_TEST) -C $(BUILD)

$(BUILD_SAN)/build.ninja:
	meson setup $(BUILD_SAN) -Db_sanitize=address,undefined -Db_lundef=false

check-san: $(BUILD_SAN)/build.ninja
	ninja -C $(BUILD_SAN) -j$(JOBS)
	$(SAN_ENV) $(MESON_TEST) -C $(BUILD_SAN) --timeout-multiplier 3

check-all: check check-san

demo: build
	bash scripts/demo.sh $(BUILD)

$(BUILD_FUZZ)/build.ninja:
	CC=clang meson setup $(BUILD_FUZZ) -Dfuzz=true \
	    -Db_sanitize=address,undefined -Db_lundef=false

fuzz: $(BUILD_FUZZ)/build.ninja
	ninja -C $(BUILD_FUZZ) -j$(JOBS)
	FUZZ_SECONDS=$(FUZZ_SECONDS) bash scripts/run-fuzz.sh $(BUILD_FUZZ)

clean:
	rm -rf $(BUILD) $(BUILD_SAN) $(BUILD_FUZZ)
