#!/usr/bin/env bash
# Build a BEAM toolchain from Debian's packages into the same prefixes as the
# prebuilt bundles (shared/toolchains) and print the environment to use.
# Usage: build-toolchain.sh NAME   (otp27.3-elixir1.18 | otp29.1-elixir1.20)
#
# Everything comes from the machine's Debian mirror, read through a private
# apt configuration for the newer suites (signed indices, checksummed files):
# Erlang/OTP and PropEr from their source packages' upstream tarballs, Elixir
# and (for OTP 29) rebar3 from theirs too, or, where the mirror lacks that
# tarball, from the suite's binary package (plain .beam files / an escript
# that Debian built with the same OTP major). Each part is taken at the
# preferred upstream version when a suite lists it, else at the newest one of
# the same series (OTP 27.3.x, Elixir 1.18.x, ...), and is said on stderr.
# OTP takes about 25 minutes on 2 cores; Elixir one.
#
# SECCOMP_TOOLCHAIN_ROOT (default /opt) is the directory that gets otp27,
# elixir118, erl_libs27 (otp29, elixir120, erl_libs29). Parts already
# installed there are kept.
set -euo pipefail
name=${1:?toolchain name}
root=${SECCOMP_TOOLCHAIN_ROOT:-/opt}
case $name in
  otp27.3-elixir1.18)
    suites="trixie" otp=$root/otp27 ex=$root/elixir118 libs=$root/erl_libs27
    otp_series=27.3 otp_want=27.3.4.1 elixir_series=1.18 elixir_want=1.18.4 ;;
  otp29.1-elixir1.20)
    suites="forky sid" otp=$root/otp29 ex=$root/elixir120 libs=$root/erl_libs29
    otp_series=29.1 otp_want=29.1.1 elixir_series=1.20 elixir_want=1.20.3 ;;
  *) echo "unknown toolchain $name" >&2; exit 2 ;;
esac
env_line="export PATH=$ex/bin:$otp/bin:\$PATH ERL_LIBS=$libs"
needs_rebar3() { [ "${otp_series%.*}" -ge 29 ]; }  # Debian's rebar3 3.19 does not load on OTP 29
complete() {
  [ -x "$otp/bin/erl" ] && [ -x "$ex/bin/elixir" ] && compgen -G "$libs/proper-*/ebin/proper.beam" >/dev/null &&
    { ! needs_rebar3 || [ -x "$otp/bin/rebar3" ]; }
}
if complete; then echo "$env_line"; exit 0; fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
sudo=""; [[ $(id -u) -eq 0 ]] || sudo="sudo"
say() { echo "build-toolchain: $*" >&2; }

# Build tools from the system's own suites, before the private configuration
# below is in force (installing through that one would upgrade the system),
# and only those missing.
missing=()
for pkg in autoconf m4 make gcc g++ libncurses-dev libssl-dev curl; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'ok installed' || missing+=("$pkg")
done
if ((${#missing[@]})); then $sudo apt-get install -y -qq "${missing[@]}" >&2; fi

# A private apt configuration: this machine's Debian mirror with the suite
# renamed, checked with the machine's archive keyring; its own lists and cache.
mirror=$(grep -h '^URIs:.*debian$' /etc/apt/sources.list.d/*.sources 2>/dev/null | head -1 | awk '{print $2}')
mirror=${mirror:-http://deb.debian.org/debian}
keyring=/usr/share/keyrings/debian-archive-keyring.gpg
mkdir -p "$work/apt/lists/partial" "$work/apt/cache/archives/partial" "$work/apt/sources.list.d"
for suite in $suites; do
  echo "deb-src [signed-by=$keyring] $mirror $suite main"
  echo "deb [signed-by=$keyring] $mirror $suite main"
done >"$work/apt/sources.list"
cat >"$work/apt/apt.conf" <<CONF
Dir::Etc::SourceList "$work/apt/sources.list";
Dir::Etc::SourceParts "$work/apt/sources.list.d";
Dir::State::Lists "$work/apt/lists";
Dir::Cache "$work/apt/cache";
APT::Sandbox::User "root";
CONF
export APT_CONFIG=$work/apt/apt.conf
apt-get update -qq >&2
cd "$work"

upstream() { sed -E 's/^[0-9]+://; s/-[^-]*$//; s/[.+~]dfsg.*$//'; }

# Lines "VERSION REST..." on stdin whose VERSION is WANT or of SERIES
# (e.g. 27.3: 27.3.x), WANT first, then newest first.
prefer() {
  local want=$1 series=$2
  awk -v w="$want" -v s="$series." '$1 == w { print 0, $0; next } index($1, s) == 1 { print 1, $0 }' |
    sort -k1,1n -k2,2Vr | cut -d' ' -f2-
}

# Upstream tarballs of source package PKG listed by the suites, as
# "UPSTREAM DIRECTORY SHA256 FILE".
orig_tarballs() {
  apt-cache showsrc "$1" | awk -v pkg="$1" -v RS= '{
    n = split($0, l, "\n"); p = v = d = f = ""; sums = 0
    for (i = 1; i <= n; i++) {
      if (l[i] ~ /^Package: /) p = substr(l[i], 10)
      else if (l[i] ~ /^Version: /) v = substr(l[i], 10)
      else if (l[i] ~ /^Directory: /) d = substr(l[i], 12)
      if (l[i] ~ /^Checksums-Sha256:/) { sums = 1; continue }
      if (!sums || l[i] !~ /^ /) { sums = 0; continue }
      split(l[i], c, " ")
      if (c[3] ~ /\.orig\.tar\.[a-z0-9]+$/) { sha = c[1]; f = c[3] }
    }
    if (p == pkg && f != "") print v, d, sha, f
  }' | while read -r v d sha f; do echo "$(upstream <<<"$v") $d $sha $f"; done | sort -u
}

# Downloads the upstream tarball of source package PKG of version SERIES.x
# (WANT preferred), checks it and prints "UPSTREAM FILE"; fails if the
# mirror has none.
fetch_orig() {
  local pkg=$1 want=$2 series=$3 vsn dir sha file
  while read -r vsn dir sha file; do
    if curl -fsS "$mirror/$dir/${file//+/%2b}" -o "$file" 2>/dev/null &&
       echo "$sha  $file" | sha256sum -c --quiet >&2; then
      echo "$vsn $file"; return 0
    fi
    say "$pkg $vsn: $file not on the mirror or not intact"; rm -f "$file"
  done < <(orig_tarballs "$pkg" | prefer "$want" "$series")
  return 1
}

# Downloads binary package BIN of version SERIES.x (WANT preferred), unpacks
# it into deb-BIN/ and prints its upstream version; fails if there is none.
fetch_deb() {
  local bin=$1 want=$2 series=$3 vsn debver
  while read -r vsn debver; do
    if apt-get download -qq "$bin=$debver" >&2 2>/dev/null; then
      dpkg-deb -x "${bin}_"*.deb "deb-$bin"; echo "$vsn"; return 0
    fi
    say "$bin $debver: not on the mirror"
  done < <(apt-cache madison "$bin" | awk -F' [|] ' '$3 ~ / Packages$/ { print $2 }' |
             while read -r v; do echo "$(upstream <<<"$v") $v"; done | sort -u | prefer "$want" "$series")
  return 1
}

path_otp() { PATH=$otp/bin:$PATH "$@"; }

if [ ! -x "$otp/bin/erl" ]; then
  read -r vsn file < <(fetch_orig erlang "$otp_want" "$otp_series") || { say "no Erlang/OTP $otp_series.x source"; exit 1; }
  say "building Erlang/OTP $vsn into $otp"
  mkdir otp && tar -xf "$file" -C otp --strip-components=1
  # The DFSG tarball lacks common_test's jQuery files; Debian's own copies serve.
  cp /usr/share/javascript/jquery/jquery.min.js otp/lib/common_test/priv/jquery-latest.js 2>/dev/null || true
  cp /usr/share/javascript/jquery-tablesorter/jquery.tablesorter.min.js otp/lib/common_test/priv/ 2>/dev/null || true
  (cd otp && ./configure --prefix="$otp" --without-javac --without-wx --without-odbc \
     --without-debugger --without-observer --without-et --without-megaco >&2)
  make -C otp -j"$(nproc)" >&2
  $sudo make -C otp install >&2
fi

if [ ! -x "$ex/bin/elixir" ]; then
  if read -r vsn file < <(fetch_orig elixir-lang "$elixir_want" "$elixir_series"); then
    say "building Elixir $vsn into $ex"
    mkdir elixir && tar -xf "$file" -C elixir --strip-components=1
    path_otp make -C elixir compile >&2
    $sudo env PATH="$otp/bin:$PATH" make -C elixir install PREFIX="$ex" >&2
  elif vsn=$(fetch_deb elixir "$elixir_want" "$elixir_series"); then
    say "installing Elixir $vsn (Debian's build) into $ex"
    $sudo mkdir -p "$ex/bin" "$ex/lib"
    $sudo cp -a deb-elixir/usr/lib/elixir "$ex/lib/"
    for tool in elixir elixirc iex mix; do $sudo ln -sfn "../lib/elixir/bin/$tool" "$ex/bin/$tool"; done
    if [ -d deb-elixir/usr/share/man ]; then $sudo mkdir -p "$ex/share" && $sudo cp -r deb-elixir/usr/share/man "$ex/share/"; fi
  else
    say "no Elixir $elixir_series.x"; exit 1
  fi
fi

if ! compgen -G "$libs/proper-*/ebin/proper.beam" >/dev/null; then
  read -r vsn file < <(fetch_orig erlang-proper 1.5.0 1) || { say "no PropEr source"; exit 1; }
  say "building PropEr $vsn into $libs"
  mkdir proper && tar -xf "$file" -C proper --strip-components=1
  dest=$libs/proper-$vsn
  $sudo mkdir -p "$dest/ebin" "$dest/include"
  $sudo cp proper/include/*.hrl "$dest/include/"
  # vararg first: it is the parse transform of proper_gen.
  (cd proper/src && $sudo "$otp/bin/erlc" -I ../include -o "$dest/ebin" vararg.erl >&2 &&
   $sudo "$otp/bin/erlc" -I ../include -pa "$dest/ebin" -o "$dest/ebin" ./*.erl >&2)
  sed 's/{vsn, *"[^"]*"}/{vsn, "'"$vsn"'"}/' proper/src/proper.app.src | $sudo tee "$dest/ebin/proper.app" >/dev/null
fi

if needs_rebar3 && [ ! -x "$otp/bin/rebar3" ]; then
  if read -r vsn file < <(fetch_orig rebar3 3.27.0 3); then
    say "bootstrapping rebar3 $vsn into $otp/bin"
    mkdir rebar3 && tar -xf "$file" -C rebar3 --strip-components=1
    (cd rebar3 && path_otp ./bootstrap >&2)
    $sudo cp rebar3/rebar3 "$otp/bin/"
  elif vsn=$(fetch_deb rebar3 3.27.0 3); then
    say "installing rebar3 $vsn (Debian's escript) into $otp/bin"
    $sudo cp deb-rebar3/usr/bin/rebar3 "$otp/bin/"
  else
    say "no rebar3 3.x"; exit 1
  fi
fi

# The result must run: the OTP major of the name, an Elixir of its series.
release=$("$otp/bin/erl" -noshell -eval 'io:format("~s", [erlang:system_info(otp_release)]), halt().')
elixir=$(PATH=$ex/bin:$otp/bin:$PATH elixir -e 'IO.write(System.version())')
say "OTP $release, Elixir $elixir"
if [ "$release" != "${otp_series%.*}" ] || [[ $elixir != "$elixir_series".* ]]; then say "unexpected versions"; exit 1; fi
if needs_rebar3; then path_otp "$otp/bin/rebar3" version >&2; fi
echo "$env_line"
