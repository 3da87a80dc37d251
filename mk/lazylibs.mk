# Libraries loaded by the command that first needs them, never linked
# (common/lazylib.h): their headers at build time, and their sonames and
# Debian packages baked in for dlopen and its error message.  Included
# by the Makefile and tests/fuzz/Makefile.
PKGS_LAZY := libcurl libgit2 libarchive libzstd libubootenv libmosquitto \
	libpq libmodbus

# lazy_so LIB NAME: -D flags naming LIB's soname (from the development
# symlink the compiler would link) and the Debian package that ships it
lazy_so = $(shell so=$$(objdump -p "$$($(CC) -print-file-name=$(1).so)" 2>/dev/null | \
	awk '$$1 == "SONAME" { print $$2 }'); \
	pk=$$(dpkg-query -S "*/$$so" 2>/dev/null | sed -n '1s/:.*//p'); \
	[ -n "$$so" ] && echo "-DFL_SONAME_$(2)='\"$$so\"' -DFL_PACKAGE_$(2)='\"$${pk:-$$so}\"'")
LAZY_DEFS = $(call lazy_so,libcurl,LIBCURL) $(call lazy_so,libgit2,LIBGIT2) \
	$(call lazy_so,libarchive,LIBARCHIVE) $(call lazy_so,libzstd,LIBZSTD) \
	$(call lazy_so,libubootenv,LIBUBOOTENV) \
	$(call lazy_so,libmosquitto,LIBMOSQUITTO) $(call lazy_so,libpq,LIBPQ) \
	$(call lazy_so,libmodbus,LIBMODBUS)
# lazy_check DEFS: stop unless every library was found
lazy_check = $(if $(filter 8,$(words $(filter -DFL_SONAME_%,$(1)))),$(1),\
	$(error cannot find the soname of every lazily loaded library \
	($(PKGS_LAZY)); found: $(filter -DFL_SONAME_%,$(1))))
