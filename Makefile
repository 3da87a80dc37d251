# Fleet: one top-level GNU Makefile for everything (DESIGN §1, §10).
#
#   make                 build programs into build/
#   make check           unit + end-to-end tests; last line "N passed, N failed"
#   make check T=PAT     only tests whose names contain PAT
#   make check SAN=1     the same with ASan+UBSan, in build-san/
#   make check-vm [T=PAT] the board-in-a-box scenarios under QEMU (tests/vm/)
#   make demo            a local fleet, narrated
#   make fuzz            libFuzzer targets (clang) in build-fuzz/
#   make fuzz-smoke [T=NAME]  each target on its corpus + FUZZ_SMOKE_SECS (30) s
#   make fuzz-long T=NAME [SECS=3600] [RUNS=N]  a campaign, under nice -n 19
#   make fuzz-cov T=NAME coverage report of NAME's corpus in build-fuzz-cov/
#   make completions     regenerate completions/ from the command tables
#   make install PREFIX=/usr/local DESTDIR= [UNITDIR=PREFIX/lib/systemd/system]
#   make deb             Debian packages into build-deb/ (docs/install.md)
#   make check-deb       make deb, then lintian on the packages
#   make clean
#   make V=1             show compiler command lines
#   make BUILD=dir       build somewhere else than build/ (build-san/)
#   make deps            install the missing Debian packages (check, demo do)
#   make WERROR=0        warnings are not errors (for packagers)

VERSION := 0.1.0
PREFIX ?= /usr/local
DESTDIR ?=
UNITDIR ?= $(PREFIX)/lib/systemd/system
SAN ?= 0

# check, demo and deps install the Debian packages that are missing
# (scripts/install-deps, fast when nothing is) before pkg-config is asked
# anything; a plain make or make install never installs, it only checks
# that the build packages are there and names make deps when not.
ifneq ($(filter check check-vm check-deb deb demo deps fuzz fuzz-smoke fuzz-long fuzz-cov,$(MAKECMDGOALS)),)
ifndef FLEET_DEPS_DONE
# Chromium (big) only when make check runs the dashboard's test (t9030).
DASH_TEST := e2e/t9030-dashboard
DEPS_FLAGS := $(if $(filter fuzz fuzz-smoke fuzz-long fuzz-cov,$(MAKECMDGOALS)),--fuzz) \
	$(if $(filter check-vm,$(MAKECMDGOALS)),--vm) \
	$(if $(filter check,$(MAKECMDGOALS)),$(if $(T),$(if $(findstring \
	$(T),$(DASH_TEST)),--dashboard),--dashboard)) \
	$(if $(filter deb check-deb check-vm,$(MAKECMDGOALS)),--pkg)
DEPS_STATUS := $(shell scripts/install-deps $(DEPS_FLAGS) >&2 && echo ok)
ifneq ($(DEPS_STATUS),ok)
$(error scripts/install-deps failed; see the messages above)
endif
export FLEET_DEPS_DONE := 1
endif
endif

ifeq ($(SAN),1)
B := $(or $(BUILD),build-san)
SANFLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer \
	-fno-sanitize-recover=undefined
OPT := -O1 -g
else
B := $(or $(BUILD),build)
SANFLAGS :=
OPT := -O2 -g
endif

# The system libraries of each program, so each links only what it uses
# (docs/decisions.md lists the resulting NEEDED entries).
PKGS_FLEETD := openssl jansson inih sqlite3 libmicrohttpd gnutls \
	libmosquitto
PKGS_FLEETCTL := openssl jansson inih
PKGS_AGENT := openssl jansson inih libmosquitto sqlite3
include mk/lazylibs.mk
# The unit tests also craft hostile tar files with libarchive's writer
# (an implementation independent of the bundle reader they attack) and
# zstd bombs with libzstd.
PKGS_TEST := libarchive libzstd
PKGS := $(sort $(PKGS_FLEETD) $(PKGS_FLEETCTL) $(PKGS_AGENT) $(PKGS_LAZY) \
	$(PKGS_TEST))
ifeq ($(filter clean help deps,$(MAKECMDGOALS)),)
ifneq ($(shell pkg-config --exists $(PKGS) && echo ok),ok)
$(error missing build packages ($(shell pkg-config --print-errors \
	--exists $(PKGS) 2>&1 | grep -o "'[a-z0-9]*'" | sort -u | \
	tr '\n' ' ')); run 'make deps' (or scripts/install-deps) first)
endif
pkg_libs = $(shell pkg-config --libs $(1)) -lpthread -lm
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS))
LIBS_ALL := $(call pkg_libs,$(sort $(PKGS_FLEETD) $(PKGS_FLEETCTL) $(PKGS_AGENT) $(PKGS_TEST)))
LIBS_FLEETD := $(call pkg_libs,$(PKGS_FLEETD))
LIBS_FLEETCTL := $(call pkg_libs,$(PKGS_FLEETCTL))
LIBS_AGENT := $(call pkg_libs,$(PKGS_AGENT))
LAZY_DEFS := $(call lazy_check,$(LAZY_DEFS))
endif

CC ?= cc
# -Werror for developers and CI; packagers building with another compiler
# turn it off with make WERROR=0 (README, docs/decisions.md).
WERROR ?= 1
WARN := -Wall -Wextra $(if $(filter 1,$(WERROR)),-Werror) -Wshadow -Wformat=2 -Wstrict-prototypes \
	-Wmissing-prototypes -Wno-unused-parameter -Wvla -Wpointer-arith -Wno-format-truncation
CPPFLAGS_ALL := -D_GNU_SOURCE -DFLEET_VERSION='"$(VERSION)"' \
	-Icommon -Isigning -Iserver-stub -Icli -Iagent -I$(B)/gen $(PKG_CFLAGS) \
	$(LAZY_DEFS)
CFLAGS_ALL := -std=gnu11 $(OPT) $(WARN) -fstack-protector-strong \
	-D_FORTIFY_SOURCE=2 -fPIE $(SANFLAGS) $(CFLAGS)
LDFLAGS_ALL := -pie -Wl,-z,relro,-z,now -Wl,--as-needed $(SANFLAGS) $(LDFLAGS)

# Libraries: every .c in the directory except the program entry points.
objs = $(patsubst %.c,$(B)/%.o,$(1))
COMMON_SRC := $(wildcard common/*.c)
SIGN_SRC := $(wildcard signing/*.c)
SRV_SRC := $(filter-out server-stub/main.c,$(wildcard server-stub/*.c))
CLI_SRC := $(filter-out cli/fleetctl.c,$(wildcard cli/*.c))
AGENT_SRC := $(filter-out agent/main.c agent/sim_main.c,$(wildcard agent/*.c))

LIB_COMMON := $(B)/libfleetcommon.a
LIB_SIGN := $(B)/libfleetsign.a
LIB_SRV := $(B)/libfleetd.a
LIB_CLI := $(B)/libfleetctl.a
LIB_AGENT := $(B)/libfleetagent.a
ALL_LIBS := $(LIB_SRV) $(LIB_CLI) $(LIB_AGENT) $(LIB_SIGN) $(LIB_COMMON)

PROGS := $(B)/fleetd $(B)/fleetctl
ifneq ($(wildcard agent/main.c),)
PROGS += $(B)/fleet-agent
endif
ifneq ($(wildcard agent/sim_main.c),)
PROGS += $(B)/fleet-sim
endif

# Test-only failpoints (FLEETD_FAILPOINTS, FLEET_AGENT_FAILPOINTS) are
# compiled only into fleetd-test and fleet-agent-test in tests/tools
# (make check builds them; make and make demo never do): the files that
# hold the hooks are rebuilt with -DFLEET_TEST_HOOKS into $(B)/test-hooks
# and replace their production objects in copies of the libraries.
HOOK_SRC := server-stub/ca.c server-stub/ingest.c server-stub/rollout_engine.c \
	agent/ota.c
HB := $(B)/test-hooks
hook_objs = $(patsubst %.c,$(HB)/%.o,$(filter $(HOOK_SRC),$(1))) \
	$(call objs,$(filter-out $(HOOK_SRC),$(1)))
LIB_SRV_HOOKS := $(HB)/libfleetd.a
LIB_AGENT_HOOKS := $(HB)/libfleetagent.a
HOOK_PROGS := $(B)/tests/tools/fleetd-test $(B)/tests/tools/fleet-agent-test \
	$(B)/tests/tools/fleet_revoke.so

# The broker plugin (docs/broker.md): loaded by mosquitto, so never built
# with the sanitizers (mosquitto is not) and never linked into libfleetd.
PLUGIN := $(B)/fleet_revoke.so
PLUGIN_SRC := broker-plugin/fleet_revoke.c broker-plugin/crlset.c \
	broker-plugin/techacl.c

UNIT_SRC := $(wildcard tests/unit/test_*.c)
UNIT_BINS := $(patsubst tests/unit/%.c,$(B)/tests/unit/%,$(UNIT_SRC))
TOOL_SRC := $(wildcard tests/tools/*.c)
TOOL_BINS := $(patsubst tests/tools/%.c,$(B)/tests/tools/%,$(TOOL_SRC))

.PHONY: all check check-vm check-deb deb demo fuzz fuzz-smoke fuzz-long fuzz-cov install \
	clean help deps firmware completions
.SECONDARY:
all: $(PROGS) $(PLUGIN)

# install-deps already ran while this Makefile was read (see the top)
deps:
	@echo "build, test and demo packages are installed"

ifeq ($(V),1)
Q :=
else
Q := @
endif

$(B)/%.o: %.c
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC      $@")
	$(Q)$(CC) $(CPPFLAGS_ALL) $(CFLAGS_ALL) -MMD -MP -c $< -o $@

$(HB)/%.o: %.c
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC      $@")
	$(Q)$(CC) $(CPPFLAGS_ALL) -DFLEET_TEST_HOOKS $(CFLAGS_ALL) -MMD -MP -c $< -o $@

# The web dashboard's files, compiled into fleetd (docs/dashboard.md).
DASH_FILES := $(sort $(wildcard server-stub/dash/*))
$(B)/gen/dash_files.h: $(DASH_FILES) scripts/embed-assets
	@mkdir -p $(dir $@)
	$(Q)scripts/embed-assets $(DASH_FILES) >$@.tmp && mv $@.tmp $@
$(B)/server-stub/api_dash.o: $(B)/gen/dash_files.h

define lib_rule
$(1): $(call objs,$(2))
	@mkdir -p $$(dir $$@)
	@rm -f $$@
	$(Q)ar rcs $$@ $$^
endef
$(eval $(call lib_rule,$(LIB_COMMON),$(COMMON_SRC)))
$(eval $(call lib_rule,$(LIB_SIGN),$(SIGN_SRC)))
$(eval $(call lib_rule,$(LIB_SRV),$(SRV_SRC)))
$(eval $(call lib_rule,$(LIB_CLI),$(CLI_SRC)))
$(eval $(call lib_rule,$(LIB_AGENT),$(AGENT_SRC)))
$(LIB_SRV_HOOKS): $(call hook_objs,$(SRV_SRC))
	@mkdir -p $(dir $@)
	@rm -f $@
	$(Q)ar rcs $@ $^
$(LIB_AGENT_HOOKS): $(call hook_objs,$(AGENT_SRC))
	@mkdir -p $(dir $@)
	@rm -f $@
	$(Q)ar rcs $@ $^

$(B)/fleetd: $(B)/server-stub/main.o $(LIB_SRV) $(LIB_SIGN) $(LIB_COMMON)
	@$(if $(Q),echo "  LINK    $@")
	$(Q)$(CC) $(LDFLAGS_ALL) -o $@ $^ $(LIBS_FLEETD)
$(B)/fleetctl: $(B)/cli/fleetctl.o $(LIB_CLI) $(LIB_SIGN) $(LIB_COMMON)
	@$(if $(Q),echo "  LINK    $@")
	$(Q)$(CC) $(LDFLAGS_ALL) -o $@ $^ $(LIBS_FLEETCTL)
$(B)/fleet-agent: $(B)/agent/main.o $(LIB_AGENT) $(LIB_SIGN) $(LIB_COMMON)
	@$(if $(Q),echo "  LINK    $@")
	$(Q)$(CC) $(LDFLAGS_ALL) -o $@ $^ $(LIBS_AGENT)
$(B)/fleet-sim: $(B)/agent/sim_main.o $(LIB_AGENT) $(LIB_SIGN) $(LIB_COMMON)
	@$(if $(Q),echo "  LINK    $@")
	$(Q)$(CC) $(LDFLAGS_ALL) -o $@ $^ $(LIBS_AGENT)

$(B)/tests/tools/fleetd-test: $(B)/server-stub/main.o $(LIB_SRV_HOOKS) \
		$(LIB_SIGN) $(LIB_COMMON)
	@$(if $(Q),echo "  LINK    $@")
	$(Q)$(CC) $(LDFLAGS_ALL) -o $@ $^ $(LIBS_FLEETD)
$(B)/tests/tools/fleet-agent-test: $(B)/agent/main.o $(LIB_AGENT_HOOKS) \
		$(LIB_SIGN) $(LIB_COMMON)
	@$(if $(Q),echo "  LINK    $@")
	$(Q)$(CC) $(LDFLAGS_ALL) -o $@ $^ $(LIBS_AGENT)

# The Modbus simulator links libmodbus itself (the agent's archive
# only has the lazily loading shims of agent/lazy_modbus.c)
$(B)/tests/tools/modbus-sim: $(B)/tests/tools/modbus-sim.o
	@$(if $(Q),echo "  LINK    $@")
	$(Q)$(CC) $(LDFLAGS_ALL) -o $@ $^ $(shell pkg-config --libs libmodbus) -lm

# fleetd-test finds the broker plugin next to itself, like fleetd
$(B)/tests/tools/fleet_revoke.so: $(PLUGIN)
	@mkdir -p $(dir $@)
	$(Q)cp $< $@

$(B)/tests/unit/%: $(B)/tests/unit/%.o $(ALL_LIBS)
	@$(if $(Q),echo "  LINK    $@")
	$(Q)$(CC) $(LDFLAGS_ALL) -o $@ $^ $(LIBS_ALL) -lcmocka
$(B)/tests/tools/%: $(B)/tests/tools/%.o $(ALL_LIBS)
	@$(if $(Q),echo "  LINK    $@")
	$(Q)$(CC) $(LDFLAGS_ALL) -o $@ $^ $(LIBS_ALL)

$(PLUGIN): $(PLUGIN_SRC) broker-plugin/crlset.h broker-plugin/techacl.h
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  PLUGIN  $@")
	$(Q)$(CC) -std=gnu11 -O2 -g $(WARN) -D_GNU_SOURCE -fPIC -shared \
		-fstack-protector-strong -D_FORTIFY_SOURCE=2 -Wl,-z,relro,-z,now \
		$(CFLAGS) -o $@ $(PLUGIN_SRC) -lcrypto

# The committed completion scripts are generated from the command table;
# t9001 fails when they are stale.
completions: $(PROGS)
	$(B)/fleetctl completion bash > completions/fleetctl.bash
	$(B)/fleetctl completion zsh > completions/_fleetctl
	$(B)/fleetctl completion fish > completions/fleetctl.fish
	scripts/gen-completions $(B) completions

firmware:
	$(MAKE) -C firmware-sample OUT=$(CURDIR)/$(B)/firmware

check: all $(PLUGIN) $(UNIT_BINS) $(TOOL_BINS) $(HOOK_PROGS)
	@FLEET_BUILD=$(CURDIR)/$(B) FLEET_SAN=$(SAN) FLEET_STORE=$(STORE) tests/run "$(T)"

# One guest at a time; builds the image on first use (debootstrap, cached
# in ~/.cache/fleet-vm).  docs/bootloader.md, "The VM harness".
check-vm: all $(PLUGIN)
	@FLEET_BUILD=$(CURDIR)/$(B) tests/vm/run "$(T)"

demo: all
	@FLEET_BUILD=$(CURDIR)/$(B) scripts/demo

# Fuzzing (docs/testing.md): the targets build with clang in their own
# dirs, whatever SAN and BUILD say; one target runs at a time.
FUZZ_SMOKE_SECS ?= 30
SECS ?= 3600
RUNS ?= -1
fuzz:
	$(MAKE) -f tests/fuzz/Makefile B=build-fuzz

fuzz-smoke: fuzz
	tests/fuzz/run.sh smoke $(FUZZ_SMOKE_SECS) $(T)

fuzz-long: fuzz
	@test -n "$(T)" || { echo "make fuzz-long T=NAME [SECS=3600] [RUNS=N]" >&2; exit 2; }
	nice -n 19 tests/fuzz/run.sh long $(T) $(SECS) $(RUNS)

fuzz-cov:
	@test -n "$(T)" || { echo "make fuzz-cov T=NAME" >&2; exit 2; }
	$(MAKE) -f tests/fuzz/Makefile B=build-fuzz-cov COV=1 build-fuzz-cov/fuzz_$(T)
	tests/fuzz/run.sh cov $(T)

install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/share/man/man1 \
		$(DESTDIR)$(PREFIX)/share/man/man5 \
		$(DESTDIR)$(PREFIX)/share/man/man8 \
		$(DESTDIR)$(PREFIX)/share/bash-completion/completions \
		$(DESTDIR)$(PREFIX)/share/zsh/site-functions \
		$(DESTDIR)$(PREFIX)/share/fish/vendor_completions.d
	install -m 0755 $(PROGS) $(DESTDIR)$(PREFIX)/bin/
	install -d $(DESTDIR)$(PREFIX)/lib/fleet
	install -m 0644 $(PLUGIN) $(DESTDIR)$(PREFIX)/lib/fleet/
	for m in man/*.[158]; do \
		s=$${m##*.}; install -m 0644 $$m $(DESTDIR)$(PREFIX)/share/man/man$$s/; \
	done
	for p in fleetctl fleetd fleet-agent fleet-sim; do \
		install -m 0644 completions/$$p.bash \
			$(DESTDIR)$(PREFIX)/share/bash-completion/completions/$$p; \
		install -m 0644 completions/_$$p \
			$(DESTDIR)$(PREFIX)/share/zsh/site-functions/_$$p; \
		install -m 0644 completions/$$p.fish \
			$(DESTDIR)$(PREFIX)/share/fish/vendor_completions.d/$$p.fish; \
	done
	install -d $(DESTDIR)$(UNITDIR)
	for u in fleetd fleet-agent; do \
		sed 's|@BINDIR@|$(PREFIX)/bin|g' packaging/systemd/$$u.service.in \
			> $(DESTDIR)$(UNITDIR)/$$u.service; \
		chmod 0644 $(DESTDIR)$(UNITDIR)/$$u.service; \
	done

# Debian packages (debian/, debhelper) built in a copy of the tree, so
# the .debs land in build-deb/ and the build in build-deb/src/build.
DEB_SRC := build-deb/src/fleet-$(VERSION)
deb:
	rm -rf build-deb && mkdir -p $(DEB_SRC)
	git ls-files -z --cached --others --exclude-standard | \
		tar --null -T - -cf - | tar -xf - -C $(DEB_SRC)
	cd $(DEB_SRC) && dpkg-buildpackage -b -us -uc -j2 >../build.log 2>&1 || \
		{ tail -40 ../build.log; exit 1; }
	mv build-deb/src/*.deb build-deb/
	ls build-deb/*.deb

check-deb: deb
	@FLEET_BUILD=$(CURDIR)/$(B) bash tests/deb/d0001-packages.sh

clean:
	rm -rf build build-san build-fuzz build-fuzz-cov build-deb

help:
	@sed -n '2,21p' Makefile | sed 's/^# \{0,1\}//'

-include $(shell find $(B) -name '*.d' 2>/dev/null)
