# Shared by ./run-demo, ./run-tests and ./run-bench: installs what is missing, then builds.
# Debian packages are installed only when absent, so a fresh machine gets everything and a prepared one is not slowed.

ensure_packages() {
  local missing=()
  for package in "$@"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  echo "norman: installing ${missing[*]}" >&2
  local sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

ensure_dotnet() {
  if ! command -v dotnet >/dev/null 2>&1; then
    echo "norman: the .NET 10 SDK is needed (https://dot.net); install it and run this again." >&2
    exit 1
  fi
  export DOTNET_NOLOGO=1 DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1
}

build() {
  dotnet build "$@" -c Release --nologo -v quiet -clp:ErrorsOnly
}

# libnorman.so and its header for C and other languages: build/native (Native AOT, linked by the system's cc).
publish_native() {
  dotnet publish src/Norman.Native -c Release -r linux-x64 -o build/native --nologo -v quiet -clp:ErrorsOnly
  cp src/Norman.Native/include/norman.h build/native/
  # The interposer `norman run` preloads: plain C, so that nothing of the runtime runs for a descriptor not Norman's.
  cc -O2 -Wall -Wextra -Werror -shared -fPIC src/Norman.Native/preload/norman_preload.c src/Norman.Native/preload/exec.c \
    -o build/native/libnorman-preload.so -ldl -lpthread
}
