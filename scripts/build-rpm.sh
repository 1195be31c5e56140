#!/usr/bin/env bash
# Builds the Fedora/RHEL package from rpm/mod_crane.spec, lists it and runs
# rpmlint on the spec and the RPM.
#
# On Debian (the project's machines) it is a test of the spec: Fedora's
# BuildRequires are not installable, so `rpmbuild -bb --nodeps`, with the
# macros Debian's rpm lacks (Fedora's httpd-devel macros.httpd and
# cmake-rpm-macros) defined here; %build uses Debian's apxs and -dev
# libraries. On Fedora/RHEL the system's macros are used as they are and
# rpmbuild checks the BuildRequires (`dnf builddep rpm/mod_crane.spec`).
#
#   scripts/build-rpm.sh            tarball of the work tree as it is (tracked
#                                   and untracked files; .gitignore'd ones
#                                   and build/ left out)
#   scripts/build-rpm.sh --head     tarball of the last commit (git archive)
#
# Everything goes to build/pkg-rpm/ (rpmbuild's _topdir); the RPM lands in
# build/pkg-rpm/RPMS/<arch>/. Needs rpmbuild and rpmlint (on Debian
# installed with apt-get when missing) besides the build's own dependencies
# (scripts/install-deps.sh). Exits non-zero when the build or %check fails,
# or when rpmlint says anything that rpm/mod_crane.spec does not explain
# (RPMLINT_EXPLAINED below mirrors the spec's comment).
set -euo pipefail
cd "$(dirname "$0")/.."
SRC=$PWD
SPEC=rpm/mod_crane.spec
TOP=$SRC/build/pkg-rpm

from_head=0
case "${1:-}" in
  --head) from_head=1 ;;
  "") ;;
  *) echo "usage: $0 [--head]" >&2; exit 2 ;;
esac

# ---- tools
debian=0
[ -f /etc/debian_version ] && debian=1
missing=()
command -v rpmbuild >/dev/null 2>&1 || missing+=(rpm)
command -v rpmlint >/dev/null 2>&1 || missing+=(rpmlint)
if [ ${#missing[@]} -gt 0 ]; then
  if [ $debian -eq 0 ]; then
    echo "build-rpm: install rpm-build and rpmlint first" >&2
    exit 1
  fi
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
APXS=$(command -v apxs || command -v apxs2 || true)
[ -n "$APXS" ] || { echo "build-rpm: apxs not found (apache2-dev / httpd-devel)" >&2; exit 1; }

# ---- version: the spec's must be the project's
version=$(sed -n 's/^Version:[[:space:]]*//p' "$SPEC")
cmake_version=$(sed -n 's/^project(mod_crane VERSION \([0-9.]*\).*/\1/p' CMakeLists.txt)
if [ "$version" != "$cmake_version" ]; then
  echo "build-rpm: $SPEC says Version $version, CMakeLists.txt says $cmake_version" >&2
  exit 1
fi
name=mod_crane-$version

# ---- source tarball
rm -rf "$TOP"
mkdir -p "$TOP"/{SOURCES,SPECS,BUILD,BUILDROOT,RPMS,SRPMS}
tarball=$TOP/SOURCES/$name.tar.gz
if [ $from_head -eq 1 ]; then
  git archive --format=tar.gz --prefix="$name/" -o "$tarball" HEAD
elif git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  # tracked + untracked files, minus ignored ones and files deleted in the
  # work tree; build/ is ignored (.gitignore), and excluded again to be sure
  git ls-files -z --cached --others --exclude-standard \
    | while IFS= read -r -d '' f; do
        case "$f" in build/*|.git/*) continue ;; esac
        [ -e "$f" ] && printf '%s\0' "$f"
      done \
    | LC_ALL=C sort -z \
    | tar --null -T - --transform "s,^,$name/," --owner=0 --group=0 --numeric-owner -czf "$tarball"
else
  tar --exclude=./build --exclude=./.git --exclude='__pycache__' --transform "s,^\.,$name," \
      --owner=0 --group=0 --numeric-owner -czf "$tarball" .
fi
cp "$SPEC" "$TOP/SPECS/"
echo "build-rpm: $(tar -tzf "$tarball" | wc -l) entries in $tarball"

# ---- the macros Debian's rpm lacks: Fedora's httpd-devel (macros.httpd)
# and cmake-rpm-macros (macros.cmake) definitions, with this machine's
# apxs. Only what the system does not define already.
rpm_args=(--define "_topdir $TOP")
if [ -z "$(rpm --eval '%{?_httpd_mmn}')" ]; then
  incdir=$("$APXS" -q INCLUDEDIR)
  mmn_major=$(sed -n 's/^#define MODULE_MAGIC_NUMBER_MAJOR[[:space:]]*\([0-9]*\).*/\1/p' "$incdir/ap_mmn.h")
  [ -n "$mmn_major" ] || { echo "build-rpm: no MODULE_MAGIC_NUMBER_MAJOR in $incdir/ap_mmn.h" >&2; exit 1; }
  # Fedora's httpd provides httpd-mmn = MAJOR and httpd-mmn = MAJOR<isa>
  # (e.g. 20120211x8664); %_httpd_mmn is the latter (httpd-devel's .mmn)
  isa=$(rpm --eval '%{__isa_name}%{__isa_bits}')
  rpm_args+=(
    --define "_httpd_mmn ${mmn_major}${isa}"
    --define "_httpd_apxs $APXS"
    --define "_httpd_moddir /usr/lib64/httpd/modules"
    --define "_httpd_modconfdir /etc/httpd/conf.modules.d"
    --define "_httpd_confdir /etc/httpd/conf.d"
    --define "_httpd_contentdir /var/www"
  )
fi
# Debian's rpm keeps rpm's old default /usr/com
if [ "$(rpm --eval '%{_sharedstatedir}')" != /var/lib ]; then
  rpm_args+=(--define "_sharedstatedir /var/lib")
fi
if [ -z "$(rpm --eval '%{?cmake:yes}')" ]; then
  cat > "$TOP/fedora-cmake.macros" <<'MACROS'
%_vpath_srcdir .
%_vpath_builddir %{_vendor}-%{_target_os}-build
%__cmake /usr/bin/cmake
%__ctest /usr/bin/ctest
%__cmake_builddir %{_vpath_builddir}
%cmake \
  %{set_build_flags} \
  %{__cmake} -S "%{_vpath_srcdir}" -B "%{__cmake_builddir}" -DCMAKE_INSTALL_PREFIX:PATH=%{_prefix} -DCMAKE_INSTALL_LIBDIR:PATH=%{_lib} -DSYSCONF_INSTALL_DIR:PATH=%{_sysconfdir} -DBUILD_SHARED_LIBS:BOOL=ON -DCMAKE_VERBOSE_MAKEFILE:BOOL=ON
%cmake_build %{__cmake} --build "%{__cmake_builddir}" %{?_smp_mflags} --verbose
%cmake_install DESTDIR="%{buildroot}" %{__cmake} --install "%{__cmake_builddir}"
%ctest %{__ctest} --test-dir "%{__cmake_builddir}" --output-on-failure --force-new-ctest-process %{?_smp_mflags}
MACROS
  rpm_args+=(--load "$TOP/fedora-cmake.macros")
fi
# Debian: Fedora's BuildRequires can be neither installed nor checked
if [ $debian -eq 1 ]; then
  rpm_args+=(--nodeps)
fi

echo "build-rpm: rpmbuild -bb ${rpm_args[*]} (log: $TOP/rpmbuild.log)"
if ! rpmbuild -bb "${rpm_args[@]}" "$TOP/SPECS/mod_crane.spec" > "$TOP/rpmbuild.log" 2>&1; then
  tail -60 "$TOP/rpmbuild.log"
  echo "build-rpm: rpmbuild failed" >&2
  exit 1
fi
echo "build-rpm: %check: $(grep -E 'tests passed, [0-9]+ tests failed' "$TOP/rpmbuild.log" || echo '?')"
rpm_file=$(ls "$TOP"/RPMS/*/"$name"-*.rpm | grep -v -- '-debug' | head -1)
echo "build-rpm: built $rpm_file"

echo "---- rpm -qip"
rpm -qip "$rpm_file"
echo "---- rpm -qlvp"
rpm -qlvp "$rpm_file"
echo "---- rpm -qp --requires (libraries' sonames left out)"
rpm -qp --requires "$rpm_file" | grep -v '\.so'
echo "---- rpm -qp --configfiles"
rpm -qp --configfiles "$rpm_file"

echo "---- rpmlint $SPEC $rpm_file"
# What rpmlint may say, each explained in rpm/mod_crane.spec's header, as
# rpmlint prints it after "E: " / "W: ".
RPMLINT_EXPLAINED=(
  "no-url-tag"
  "invalid-url Source0: $name.tar.gz"
  "no-manual-page-for-binary crane-publish"
  "no-signature"
  "no-packager-tag"
  "no-group-tag"
  "no-buildroot-tag"
  "invalid-license Apache-2.0"
)
if [ $debian -eq 1 ]; then
  RPMLINT_EXPLAINED+=(
    "unstripped-binary-or-object /usr/bin/crane-publish"
    "unstripped-binary-or-object /usr/lib64/httpd/modules/mod_crane.so"
  )
fi
lint_out=$TOP/rpmlint.out
rpmlint "$TOP/SPECS/mod_crane.spec" "$rpm_file" > "$lint_out" 2>&1 || true
cat "$lint_out"
if ! grep -q 'packages and 1 specfiles checked' "$lint_out"; then
  echo "build-rpm: rpmlint did not run to the end" >&2
  exit 1
fi
unexplained=0
while IFS= read -r line; do
  # "mod_crane.x86_64: W: check-id [argument...]"
  msg=$(printf '%s\n' "$line" | sed -n 's/^[^ ]*: [EW]: //p')
  [ -n "$msg" ] || continue
  ok=0
  for e in "${RPMLINT_EXPLAINED[@]}"; do
    if [ "$msg" = "$e" ]; then ok=1; break; fi
  done
  if [ $ok -eq 0 ]; then
    echo "build-rpm: rpmlint message not explained in $SPEC: $line" >&2
    unexplained=$((unexplained + 1))
  fi
done < "$lint_out"
if [ $unexplained -ne 0 ]; then
  echo "build-rpm: $unexplained rpmlint message(s) not explained" >&2
  exit 1
fi
echo "build-rpm: OK: $rpm_file (every rpmlint message is explained in $SPEC)"
