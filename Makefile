# User-facing commands. The build itself is Meson + Ninja.
BUILD      ?= build
ASAN_BUILD ?= build-asan
CLAWBOX    := $(BUILD)/src/cli/clawbox
HOME_DIR   ?= $(HOME)/.clawbox
PREFIX     ?= /usr/local

.PHONY: all deps build run default-image install check bench format clean

all: build

deps:
	@scripts/deps.sh build

$(BUILD)/build.ninja:
	meson setup $(BUILD) --buildtype=debugoptimized -Ddebug=false

build: deps $(BUILD)/build.ninja
	ninja -C $(BUILD)

# Creates ~/.clawbox with a config and token on first use, installs the
# example tools there (never replacing a file), then serves.
run: deps $(BUILD)/build.ninja
	ninja -C $(BUILD) serve
	@[ -f $(HOME_DIR)/config/clawbox.toml ] || $(CLAWBOX) init --dir $(HOME_DIR)
	@mkdir -p $(HOME_DIR)/tools
	@cp -n tools/prebuilt/*.wasm $(HOME_DIR)/tools/
	@for m in tools/*/manifest.json; do \
	  n=$${m#tools/}; cp -n $$m $(HOME_DIR)/tools/$${n%/manifest.json}.json; done
	@$(MAKE) --no-print-directory default-image
	@echo "clawbox: starting; its 'listening' line gives the URL (auth token in $(HOME_DIR)/token)"
	@echo "clawbox: export CLAWBOX_AUTH_TOKEN=\"\$$(cat $(HOME_DIR)/token)\""
	exec $(CLAWBOX) serve --config $(HOME_DIR)/config/clawbox.toml

# The default container image, clawbox/agent-base:latest, built once in the
# background (mmdebstrap, 1-4 minutes) while the server starts; its progress
# lines start with "image:". Containers need root, so only root builds it.
# It runs at the lowest CPU and I/O priority: the first start compiles the
# example tools meanwhile, and on a small machine the two would share it.
IMAGE_CFG := --config $(HOME_DIR)/config/clawbox.toml
default-image:
	@if [ "$$(id -u)" != 0 ]; then \
	  echo "clawbox: not root, so no containers (and no default image)"; \
	elif ! $(CLAWBOX) image $(IMAGE_CFG) list --json | grep -q '"clawbox/agent-base:latest"'; then \
	  echo "clawbox: building the default container image in the background"; \
	  ( nice -n 19 ionice -c 3 $(CLAWBOX) image $(IMAGE_CFG) build-default 2>&1 | \
	    sed -u 's/^/image: /' ) & \
	fi

# Installs the binary, its man pages and bash completion under PREFIX
# (DESTDIR is honoured). The server compiles tools at run time, so the
# machine it runs on needs the packages of `scripts/deps.sh build`.
install: deps $(BUILD)/build.ninja
	meson configure $(BUILD) -Dprefix=$(PREFIX)
	ninja -C $(BUILD) serve
	meson install -C $(BUILD) --no-rebuild

check:
	@scripts/deps.sh check
	@scripts/check.sh

bench: build
	@scripts/deps.sh bench
	@bench/run.sh $(BUILD)

format:
	@git ls-files '*.c' '*.h' | xargs clang-format -i

clean:
	rm -rf $(BUILD) $(ASAN_BUILD)
