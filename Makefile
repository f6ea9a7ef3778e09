# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
# Portcullis: fail-secure network lockdown agent.
#   make          build BPF objects, skeletons and the binaries
#   make deps     install every Debian package build, tests and demo need
#   make check    run every test (unit, verdict, end-to-end)
#   make demo     namespace lab walk-through
#   make bench    per-packet cost vs policy size (ratios to a baseline)
#   make vmlinux  regenerate vmlinux/<arch>/vmlinux.h from the running kernel

OUTPUT ?= build
CLANG ?= clang
BPFTOOL ?= bpftool
ARCH := $(shell uname -m | sed -e 's/x86_64/x86/' -e 's/aarch64/arm64/')
VMLINUX := vmlinux/$(ARCH)/vmlinux.h
PREFIX ?= /usr/local

CFLAGS ?= -g -O2
NL_CFLAGS := $(shell pkg-config --cflags libnl-3.0 2>/dev/null)
USER_CFLAGS := $(CFLAGS) -std=gnu11 -Wall -Wextra -Werror -Wno-unused-parameter \
	-D_GNU_SOURCE -Iinclude -Iuser -I$(OUTPUT) $(NL_CFLAGS)
BPF_CFLAGS := -g -O2 -target bpf -D__TARGET_ARCH_$(ARCH) -Wall -Werror \
	-Iinclude -Ivmlinux/$(ARCH)
# BPF objects built on UAPI headers (<linux/bpf.h>) rather than vmlinux.h:
# Debian keeps asm/types.h under the multiarch directory, which clang
# -target bpf does not search by itself.
BPF_UAPI_CFLAGS := -g -O2 -target bpf -Wall -Werror \
	-I/usr/include/$(shell gcc -dumpmachine)
LDLIBS := -lbpf -lelf -lz -lyaml -lsodium -lsystemd -lnl-3 -lmicrohttpd \
	-lcurl -ljson-c

BPF_SRCS := $(wildcard bpf/*.bpf.c)
BPF_OBJS := $(patsubst bpf/%.bpf.c,$(OUTPUT)/%.bpf.o,$(BPF_SRCS))
SKELS := $(patsubst bpf/%.bpf.c,$(OUTPUT)/%.skel.h,$(BPF_SRCS))
SHARED_HDR := include/portcullis.h

# Userspace library shared by the daemon, the CLI and the tests: every
# user/*.c but the two programs' mains and the agent's loop.
LIB_SRCS := $(filter-out user/portcullisd.c user/portcullis.c user/agent.c,\
	$(wildcard user/*.c))
LIB_OBJS := $(patsubst user/%.c,$(OUTPUT)/user/%.o,$(LIB_SRCS))
BINS := $(OUTPUT)/portcullisd $(OUTPUT)/portcullis

ifeq ($(V),1)
Q =
msg =
else
Q = @
msg = @printf '  %-8s %s\n' "$(1)" "$(2)";
endif

.PHONY: all deps vmlinux check check-unit check-verdict check-e2e check-asan check-fuzz check-static check-verify verify fuzz demo bench clean install
.DELETE_ON_ERROR:
.SECONDARY:

all: $(BINS)

$(OUTPUT) $(OUTPUT)/user $(OUTPUT)/tests:
	$(Q)mkdir -p $@

$(OUTPUT)/%.bpf.o: bpf/%.bpf.c $(wildcard bpf/*.h) $(SHARED_HDR) $(VMLINUX) | $(OUTPUT)
	$(call msg,BPF,$@)
	$(Q)$(CLANG) $(BPF_CFLAGS) -c $< -o $@

$(OUTPUT)/%.skel.h: $(OUTPUT)/%.bpf.o
	$(call msg,GEN-SKEL,$@)
	$(Q)$(BPFTOOL) gen skeleton $< name $(subst -,_,$*)_bpf > $@

$(OUTPUT)/user/%.o: user/%.c $(wildcard user/*.h) $(SHARED_HDR) $(SKELS) | $(OUTPUT)/user
	$(call msg,CC,$@)
	$(Q)$(CC) $(USER_CFLAGS) -c $< -o $@

$(OUTPUT)/portcullisd: $(OUTPUT)/user/portcullisd.o $(OUTPUT)/user/agent.o $(LIB_OBJS)
	$(call msg,BINARY,$@)
	$(Q)$(CC) $(USER_CFLAGS) $^ $(LDLIBS) -o $@

$(OUTPUT)/portcullis: $(OUTPUT)/user/portcullis.o $(LIB_OBJS)
	$(call msg,BINARY,$@)
	$(Q)$(CC) $(USER_CFLAGS) $^ $(LDLIBS) -o $@

# cmocka unit tests: tests/unit/test_X.c -> build/test_X
UNIT_TESTS := $(patsubst tests/unit/%.c,$(OUTPUT)/%,$(wildcard tests/unit/test_*.c))

$(OUTPUT)/test_%: tests/unit/test_%.c $(LIB_OBJS) | $(OUTPUT)
	$(call msg,TEST,$@)
	$(Q)$(CC) $(USER_CFLAGS) $^ $(LDLIBS) -lcmocka -o $@

$(OUTPUT)/trivial.bpf.o: tests/bench/trivial.bpf.c $(VMLINUX) | $(OUTPUT)
	$(call msg,BPF,$@)
	$(Q)$(CLANG) $(BPF_CFLAGS) -c $< -o $@

$(OUTPUT)/probe.bpf.o: tests/bench/pkt/probe.bpf.c $(wildcard bpf/*.h) $(SHARED_HDR) $(VMLINUX) | $(OUTPUT)
	$(call msg,BPF,$@)
	$(Q)$(CLANG) $(BPF_CFLAGS) -Ibpf -c $< -o $@

$(OUTPUT)/bench_pkt: tests/bench/bench_pkt.c $(LIB_OBJS) | $(OUTPUT)
	$(call msg,BENCH,$@)
	$(Q)$(CC) $(USER_CFLAGS) $^ $(LDLIBS) -lm -o $@

$(OUTPUT)/test_verdict: tests/verdict/test_verdict.c tests/verdict/frames.h $(LIB_OBJS) | $(OUTPUT)
	$(call msg,TEST,$@)
	$(Q)$(CC) $(USER_CFLAGS) -Itests/verdict $(filter %.c %.o,$^) $(LDLIBS) -o $@

# Every Debian package the build, the tests and the demo need. Installs
# only what is missing (after apt-get update), so `make check` and
# `make demo` can run it first every time.
DEB_PKGS := clang llvm gcc make libc6-dev linux-libc-dev libbpf-dev bpftool \
	libelf-dev zlib1g-dev libyaml-dev libcmocka-dev libsodium-dev \
	libnl-3-dev libsystemd-dev libmicrohttpd-dev pkg-config iproute2 \
	iputils-ping python3 python3-yaml util-linux procps systemd prometheus \
	strace libcap2-bin libclang-rt-14-dev cppcheck clang-tidy \
	xdp-tools gnuplot-nox nftables iptables ethtool \
	libcurl4-openssl-dev libjson-c-dev etcd-server etcd-client curl
deps:
	@missing=$$(for p in $(DEB_PKGS); do \
		dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | \
			grep -q 'install ok installed' || echo $$p; done); \
	if [ -z "$$missing" ]; then echo "deps: all installed"; else \
		echo "deps: installing" $$missing; \
		apt-get update && DEBIAN_FRONTEND=noninteractive \
			apt-get install -y --no-install-recommends $$missing; fi

vmlinux:
	$(BPFTOOL) btf dump file /sys/kernel/btf/vmlinux format c > $(VMLINUX)

# The two commands of the README: each does all its own set-up.
check: deps
	$(MAKE) check-unit check-verdict check-verify check-asan check-fuzz \
		check-static check-e2e
	@echo "check: all tests passed"

demo: deps
	$(MAKE) all
	bash tests/demo.sh
	bash tests/demo_fleet.sh

check-unit: $(UNIT_TESTS)
	@set -e; for t in $(UNIT_TESTS); do echo "== $$t"; $$t; done

check-verdict: $(OUTPUT)/test_verdict
	$(OUTPUT)/test_verdict

check-e2e: $(BINS) $(OUTPUT)/flood
	bash tests/e2e/run.sh
	bash tests/e2e/agent.sh
	bash tests/e2e/telemetry.sh
	bash tests/e2e/faults.sh
	bash tests/e2e/fleet.sh
	bash tests/e2e/failsecure.sh
	bash tests/e2e/outsider.sh
	FANOUT_TRIALS=2 FANOUT_BASELINE=10 BENCH_OUT=$(OUTPUT)/fanout \
		bash tests/bench/fleet_fanout.sh
	bash tests/deploy/check.sh
	bash tests/deploy/caps.sh

# Differential testing: the real programs against an independent model
# on random policies and frame sequences (tests/verify/).
VERIFY_SRCS := $(wildcard tests/verify/*.c)
VERIFY_HDRS := $(wildcard tests/verify/*.h)
VERIFY_SEED ?= 1
VERIFY_FRAMES ?= 10000
VERIFY_POLICIES ?= 200

$(OUTPUT)/verify: $(VERIFY_SRCS) $(VERIFY_HDRS) $(LIB_OBJS) $(SKELS) | $(OUTPUT)
	$(call msg,TEST,$@)
	$(Q)$(CC) $(USER_CFLAGS) -Itests/verify $(filter %.c %.o,$^) $(LDLIBS) -o $@

check-verify: $(OUTPUT)/verify
	$(OUTPUT)/verify --seed $(VERIFY_SEED) --policies 50 --frames 4000

verify: $(OUTPUT)/verify
	$(OUTPUT)/verify --seed $(VERIFY_SEED) --policies $(VERIFY_POLICIES) \
		--frames $(VERIFY_FRAMES)

# ---- sanitizers, fuzzing, static checks ----

SAN_FLAGS := -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
ASAN_TESTS := $(patsubst tests/unit/%.c,$(OUTPUT)/asan/%,$(wildcard tests/unit/test_*.c))
ASAN_OBJS := $(patsubst user/%.c,$(OUTPUT)/asan/obj/%.o,$(LIB_SRCS))
FUZZ_OBJS := $(patsubst user/%.c,$(OUTPUT)/fuzz/obj/%.o,$(LIB_SRCS))
$(OUTPUT)/asan/obj/%.o: user/%.c $(wildcard user/*.h) $(SHARED_HDR) $(SKELS)
	$(call msg,CC-ASAN,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CC) $(USER_CFLAGS) $(SAN_FLAGS) -c $< -o $@
$(OUTPUT)/asan/test_%: tests/unit/test_%.c $(ASAN_OBJS)
	$(call msg,ASAN,$@)
	$(Q)$(CC) $(USER_CFLAGS) $(SAN_FLAGS) $^ $(LDLIBS) -lcmocka -o $@

# The unit tests again under ASan+UBSan: any report fails them.
check-asan: $(ASAN_TESTS)
	@set -e; for t in $(ASAN_TESTS); do echo "== $$t"; \
		ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 $$t >/dev/null; done
	@echo "asan: $(words $(ASAN_TESTS)) unit-test binaries clean under ASan+UBSan"

# libFuzzer harnesses for every parser of outside input.
FUZZERS := policy config msg cidr etcd
FUZZ_BINS := $(patsubst %,$(OUTPUT)/fuzz/fuzz_%,$(FUZZERS))
FUZZ_SECONDS ?= 60
FUZZ_CHECK_RUNS ?= 20000
FUZZ_CFLAGS := -g -O1 -std=gnu11 -D_GNU_SOURCE -Iinclude -Iuser -I$(OUTPUT) $(NL_CFLAGS) \
	-fno-sanitize-recover=all
$(OUTPUT)/fuzz/obj/%.o: user/%.c $(wildcard user/*.h) $(SHARED_HDR) $(SKELS)
	$(call msg,CC-FUZZ,$@)
	$(Q)mkdir -p $(@D)
	$(Q)clang $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link,address,undefined -c $< -o $@
$(OUTPUT)/fuzz/fuzz_%: tests/fuzz/fuzz_%.c $(FUZZ_OBJS)
	$(call msg,FUZZER,$@)
	$(Q)clang $(FUZZ_CFLAGS) -fsanitize=fuzzer,address,undefined $^ $(LDLIBS) -o $@

# Brief: each harness over its committed corpus plus FUZZ_CHECK_RUNS
# mutations, fixed seed. Long: FUZZ_SECONDS each, corpus grown in build/.
check-fuzz: $(FUZZ_BINS)
	@total=0; for f in $(FUZZERS); do \
		rm -rf $(OUTPUT)/fuzz/check-$$f; mkdir -p $(OUTPUT)/fuzz/check-$$f; \
		out=$$($(OUTPUT)/fuzz/fuzz_$$f -seed=1 -runs=$(FUZZ_CHECK_RUNS) \
			-max_len=65536 $(OUTPUT)/fuzz/check-$$f tests/fuzz/corpus/$$f 2>&1) || \
			{ echo "$$out" | tail -30; exit 1; }; \
		n=$$(echo "$$out" | sed -n 's/^Done \([0-9]*\) runs.*/\1/p'); \
		echo "fuzz $$f: $$n executions, no crash"; total=$$((total + n)); done; \
		echo "fuzz: $$total executions in all"
fuzz: $(FUZZ_BINS)
	@set -e; for f in $(FUZZERS); do mkdir -p $(OUTPUT)/fuzz/corpus-$$f; \
		cp -n tests/fuzz/corpus/$$f/* $(OUTPUT)/fuzz/corpus-$$f/ 2>/dev/null || true; \
		echo "== fuzz_$$f for $(FUZZ_SECONDS) s"; \
		$(OUTPUT)/fuzz/fuzz_$$f -max_total_time=$(FUZZ_SECONDS) -max_len=65536 \
			$(OUTPUT)/fuzz/corpus-$$f 2>&1 | grep -E '^(Done|==|SUMMARY)' ; done

# cppcheck and clang-tidy (checks in .clang-tidy) on user/: clean or fail.
# The generated skeleton (build/) is not ours to lint.
check-static: $(SKELS)
	cppcheck --error-exitcode=1 --enable=warning,portability,performance \
		--inline-suppr --std=c11 -q -Iinclude -Iuser -I$(OUTPUT) \
		--suppress=missingIncludeSystem \
		'-DLIBBPF_OPTS(T,N,...)=struct T N = {0}' user/
	@fail=0; for f in user/*.c; do \
		out=$$(clang-tidy -quiet $$f -- -std=gnu11 -D_GNU_SOURCE -Iinclude \
			-Iuser -I$(OUTPUT) $(NL_CFLAGS) 2>/dev/null | \
			grep -E '(warning|error):' | grep -v '^$(OUTPUT)/'); \
		if [ -n "$$out" ]; then echo "$$out"; fail=1; fi; done; \
		[ $$fail -eq 0 ] && echo "static: cppcheck and clang-tidy clean on user/"

# Every benchmark against the peers, each as ratios to baselines measured
# in the same run: bench-results/<time>/results.md (tests/bench/run.sh).
$(OUTPUT)/flood: tests/bench/flood.c | $(OUTPUT)
	$(call msg,BENCH,$@)
	$(Q)$(CC) $(USER_CFLAGS) $< -lbpf -o $@

# The veth bench's floor (XDP_DROP) and its live-frames sender.
$(OUTPUT)/bench/%.bpf.o: tests/bench/veth/%.bpf.c
	$(call msg,BPF,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CLANG) $(BPF_UAPI_CFLAGS) -c $< -o $@

BENCH_TOOLS := $(OUTPUT)/bench_pkt $(OUTPUT)/trivial.bpf.o $(OUTPUT)/probe.bpf.o \
	$(OUTPUT)/flood $(OUTPUT)/bench/xdp_drop.bpf.o $(OUTPUT)/bench/flood_xdp.bpf.o
bench: deps
	$(MAKE) all $(BENCH_TOOLS)
	bash tests/bench/run.sh

install: $(BINS)
	install -D -m 0755 $(OUTPUT)/portcullisd $(DESTDIR)$(PREFIX)/sbin/portcullisd
	install -D -m 0755 $(OUTPUT)/portcullis $(DESTDIR)$(PREFIX)/sbin/portcullis

clean:
	rm -rf $(OUTPUT)
