# The README's two commands: `make demo` runs the main job, `make check` runs every test.
# Both install what is missing (Debian packages, pinned npm test assets) first.
.PHONY: all deps build demo check check-unit check-lxd check-openstack check-asan format clean bench soak

all: build

deps:
	@scripts/deps.sh

build: deps
	@scripts/build.sh build

demo: deps
	@scripts/demo.sh

check: deps
	@scripts/check.sh

check-unit: build
	@scripts/check.sh --unit-only

# the unit tests alone, built with ASan+UBSan (build-asan)
check-asan: deps
	@scripts/check.sh --asan-only

# the LXD tests alone (LXD is started, and stopped again, if it was not running)
check-lxd: deps
	@scripts/check.sh --lxd-only

bench: build
	@scripts/bench.sh

# the OpenStack tests alone, against a real minimal OpenStack started on
# 127.0.0.1 (installed first when missing: scripts/deps-openstack.sh)
check-openstack: deps
	@scripts/check.sh --openstack-only

# the long chaos run: hundreds of kill -9s under a stream of jobs, then its figures
soak: build
	@scripts/soak.sh

format:
	@clang-format -i $$(git ls-files '*.c' '*.h')

clean:
	rm -rf build build-asan
