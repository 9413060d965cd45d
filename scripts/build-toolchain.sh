#!/usr/bin/env bash
# Build a BEAM toolchain from Debian's source packages (the upstream release
# tarballs), into the same prefixes as the prebuilt bundles, and print the
# environment to use. Slow: on 2 cores OTP takes about 25 minutes.
# Usage: build-toolchain.sh NAME   (otp27.3-elixir1.18 | otp29.1-elixir1.20)
set -euo pipefail
name=${1:?toolchain name}
case $name in
  otp27.3-elixir1.18)
    suite=trixie otp=/opt/otp27 ex=/opt/elixir118 libs=/opt/erl_libs27
    erlang=1:27.3.4.1+dfsg-1+deb13u4 elixir_tag=v1.18.4 ;;
  otp29.1-elixir1.20)
    suite=sid otp=/opt/otp29 ex=/opt/elixir120 libs=/opt/erl_libs29
    erlang= elixir_tag=v1.20.3 ;;
  *) echo "unknown toolchain $name" >&2; exit 2 ;;
esac
env_line="export PATH=$ex/bin:$otp/bin:\$PATH ERL_LIBS=$libs"
if [ -x "$otp/bin/erl" ] && [ -x "$ex/bin/elixir" ]; then echo "$env_line"; exit 0; fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
sudo=""; [[ $(id -u) -eq 0 ]] || sudo="sudo"
$sudo apt-get install -y -qq autoconf m4 build-essential libncurses-dev libssl-dev curl >&2

# A private apt configuration whose only sources are this machine's Debian
# mirror with the suite renamed, as deb-src lines.
mirror=$(grep -h '^URIs:.*debian$' /etc/apt/sources.list.d/*.sources 2>/dev/null | head -1 | awk '{print $2}')
mirror=${mirror:-http://deb.debian.org/debian}
mkdir -p "$work/apt/lists/partial" "$work/apt/sources.list.d"
echo "deb-src [trusted=yes] $mirror $suite main" >"$work/apt/sources.list"
cat >"$work/apt/apt.conf" <<CONF
Dir::Etc::SourceList "$work/apt/sources.list";
Dir::Etc::SourceParts "$work/apt/sources.list.d";
Dir::State::Lists "$work/apt/lists";
CONF
export APT_CONFIG=$work/apt/apt.conf
apt-get update -qq >&2
cd "$work"
apt-get source --download-only -qq "erlang${erlang:+=$erlang}" erlang-proper >&2

echo "building Erlang/OTP into $otp" >&2
mkdir otp && tar -xJf erlang_*.orig.tar.xz -C otp --strip-components=1
(cd otp && ./configure --prefix="$otp" --without-javac --without-wx --without-odbc \
   --without-debugger --without-observer --without-et --without-megaco >&2 &&
 make -j"$(nproc)" >&2 &&
 cp /usr/share/javascript/jquery/jquery.min.js lib/common_test/priv/jquery-latest.js 2>/dev/null || true
 cp /usr/share/javascript/jquery-tablesorter/jquery.tablesorter.min.js lib/common_test/priv/ 2>/dev/null || true
 $sudo make install >&2)

echo "building Elixir ${elixir_tag} into $ex" >&2
curl -fsSL "https://github.com/elixir-lang/elixir/archive/refs/tags/${elixir_tag}.tar.gz" -o elixir.tar.gz
mkdir elixir && tar -xzf elixir.tar.gz -C elixir --strip-components=1
(cd elixir && PATH=$otp/bin:$PATH make compile >&2 && $sudo env PATH="$otp/bin:$PATH" make install PREFIX="$ex" >&2)

echo "building PropEr into $libs" >&2
mkdir proper && tar -xzf erlang-proper_*.orig.tar.gz -C proper --strip-components=1
vsn=$(sed -n 's/.*{vsn, *"\([^"]*\)".*/\1/p' proper/src/proper.app.src)
dest=$libs/proper-$vsn
$sudo mkdir -p "$dest/ebin" "$dest/include"
$sudo cp proper/include/*.hrl "$dest/include/"
(cd proper/src && $sudo "$otp/bin/erlc" -I ../include -o "$dest/ebin" vararg.erl proper_typeserver.erl 2>/dev/null || true
 $sudo "$otp/bin/erlc" -I ../include -pa "$dest/ebin" -o "$dest/ebin" *.erl >&2)
sed "s/{modules, *\[\]}/{modules, []}/" proper/src/proper.app.src | $sudo tee "$dest/ebin/proper.app" >/dev/null

if [ "$name" = otp29.1-elixir1.20 ]; then
  # Debian's rebar3 3.19 does not load on OTP 29.
  echo "building rebar3 into $otp/bin" >&2
  apt-get source --download-only -qq rebar3 >&2
  mkdir rebar3 && tar -xf rebar3_*.orig.tar.* -C rebar3 --strip-components=1
  (cd rebar3 && PATH=$otp/bin:$PATH ./bootstrap >&2 && $sudo cp rebar3 "$otp/bin/")
fi
echo "$env_line"
